-- Tele-monitoring (server/monitoring, records/readings.py; docs/monitoring.md): a patient's
-- plan of home measurements, the personal link she sends them with, the readings themselves
-- (sealed like notes: only records/ sees their values) and the alerts the nurse works through.
CREATE TABLE monitoring_plans (
    id              bigserial PRIMARY KEY,
    patient_id      bigint NOT NULL REFERENCES patients (id),
    created_by      bigint NOT NULL REFERENCES staff (id),
    created_at      timestamptz NOT NULL DEFAULT now(),
    conditions      text[] NOT NULL CHECK (conditions <@ ARRAY['hypertension', 'diabetes',
                        'heart_failure', 'copd']::text[]),
    measurements    text[] NOT NULL CHECK (cardinality(measurements) BETWEEN 1 AND 7
                        AND measurements <@ ARRAY['blood_pressure', 'heart_rate', 'spo2',
                        'glucose', 'weight', 'temperature', 'symptoms']::text[]),
    every_hours     integer NOT NULL CHECK (every_hours BETWEEN 4 AND 24 * 28),
    tolerance_hours integer NOT NULL CHECK (tolerance_hours BETWEEN 1 AND 24 * 14),
    -- {"systolic": {"low": 90, "high": 160}, ...}: limits, not readings.
    thresholds      jsonb NOT NULL DEFAULT '{}',
    starts_at       timestamptz NOT NULL DEFAULT now(),
    ends_at         timestamptz NOT NULL,
    ended_at        timestamptz,
    CHECK (ends_at > starts_at)
);
-- One plan in force per patient: a new one ends the old first.
CREATE UNIQUE INDEX monitoring_plans_live ON monitoring_plans (patient_id) WHERE ended_at IS NULL;

-- The patient's personal link (kind 'link', the token in the message) and the sessions it
-- opens (kind 'session', the HttpOnly cookie): SHA-256 of 256 random bits, never the token.
CREATE TABLE monitoring_credentials (
    id          bigserial PRIMARY KEY,
    plan_id     bigint NOT NULL REFERENCES monitoring_plans (id),
    kind        text NOT NULL CHECK (kind IN ('link', 'session')),
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    valid_until timestamptz NOT NULL,
    revoked_at  timestamptz
);
CREATE INDEX monitoring_credentials_plan ON monitoring_credentials (plan_id);

-- A reading: when, what and from where in the clear (the worklist and missed-reading checks
-- run on these), the values sealed: AES-256-GCM under a data key of its own wrapped by the
-- patient's key (records/readings.py). Erasure sets wrapped_key to NULL and destroys the key.
CREATE TABLE monitoring_readings (
    id           bigserial PRIMARY KEY,
    plan_id      bigint NOT NULL REFERENCES monitoring_plans (id),
    patient_id   bigint NOT NULL REFERENCES patients (id),
    measurement  text NOT NULL,
    measured_at  timestamptz NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    source       text NOT NULL CHECK (source IN ('home', 'device', 'kiosk', 'nurse', 'api')),
    entered_by   bigint REFERENCES staff (id),
    out_of_range boolean NOT NULL,
    ciphertext   bytea NOT NULL,
    wrapped_key  bytea,
    kek_id       text NOT NULL,
    -- The sending phone's own id of the reading: an entry sent again after an answer lost on
    -- the way (offline queue, slow network) is stored once.
    client_ref   uuid
);
CREATE UNIQUE INDEX monitoring_readings_client_ref ON monitoring_readings (plan_id, client_ref)
    WHERE client_ref IS NOT NULL;
CREATE INDEX monitoring_readings_plan ON monitoring_readings (plan_id, measurement, measured_at);
CREATE INDEX monitoring_readings_patient ON monitoring_readings (patient_id, measured_at);
ALTER TABLE monitoring_readings ALTER COLUMN ciphertext SET STATISTICS 0;
ALTER TABLE monitoring_readings ALTER COLUMN wrapped_key SET STATISTICS 0;

-- What the nurse works through. 'out_of_range' names its reading; 'missed' the slot that
-- went by (one alert per plan, measurement and slot, however often the check runs).
CREATE TABLE monitoring_alerts (
    id          bigserial PRIMARY KEY,
    plan_id     bigint NOT NULL REFERENCES monitoring_plans (id),
    patient_id  bigint NOT NULL REFERENCES patients (id),
    kind        text NOT NULL CHECK (kind IN ('out_of_range', 'missed')),
    measurement text NOT NULL,
    reading_id  bigint REFERENCES monitoring_readings (id),
    due_at      timestamptz,
    raised_at   timestamptz NOT NULL DEFAULT now(),
    state       text NOT NULL DEFAULT 'open'
                CHECK (state IN ('open', 'acknowledged', 'to_call', 'escalated')),
    state_by    bigint REFERENCES staff (id),
    state_at    timestamptz,
    CHECK ((kind = 'out_of_range') = (reading_id IS NOT NULL)),
    CHECK ((kind = 'missed') = (due_at IS NOT NULL))
);
CREATE UNIQUE INDEX monitoring_alerts_missed ON monitoring_alerts (plan_id, measurement, due_at)
    WHERE kind = 'missed';
CREATE INDEX monitoring_alerts_open ON monitoring_alerts (plan_id, raised_at)
    WHERE state <> 'acknowledged';
-- The worklist's poll (server/monitoring/alerts.py VERSION) reads the latest change.
CREATE INDEX monitoring_alerts_state_at ON monitoring_alerts (state_at);
