-- Care rests on facts a clinician cannot create alone (server/care.py). This migration records
-- them: who set each booking status, the reason a coordinator gave for a booking in the past,
-- and explicit referrals by a clinician already caring. Plus per-staff counters for limits.

-- Every status change of a booking, with who made it. The trigger below writes the row, so no
-- writer can forget it; the writer names itself in the transaction-local setting
-- 'casa.status_by' ('staff:<id>' or 'patient'), and a change made without it is 'system'.
CREATE TABLE booking_status_changes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id  bigint NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    from_status text NOT NULL,
    to_status   text NOT NULL,
    by_kind     text NOT NULL CHECK (by_kind IN ('staff', 'patient', 'system')),
    by_staff_id bigint REFERENCES staff (id),
    at          timestamptz NOT NULL DEFAULT now(),
    CHECK ((by_kind = 'staff') = (by_staff_id IS NOT NULL))
);
CREATE INDEX booking_status_changes_booking ON booking_status_changes (booking_id, to_status);

CREATE FUNCTION bookings_log_status() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    who text := coalesce(current_setting('casa.status_by', true), '');
    staff_id bigint;
    kind text := 'system';
BEGIN
    IF who ~ '^staff:[0-9]{1,18}$' THEN
        staff_id := substr(who, 7)::bigint;
        kind := 'staff';
    ELSIF who = 'patient' THEN
        kind := 'patient';
    END IF;
    INSERT INTO booking_status_changes (booking_id, from_status, to_status, by_kind, by_staff_id)
    VALUES (NEW.id, OLD.status, NEW.status, kind, staff_id);
    RETURN NULL;
END $$;
CREATE TRIGGER bookings_log_status AFTER UPDATE OF status ON bookings
    FOR EACH ROW WHEN (NEW.status IS DISTINCT FROM OLD.status)
    EXECUTE FUNCTION bookings_log_status();

-- A booking placed (or moved) into the past: only a coordinator, with a reason, kept here
-- (staff_id NULL: the system itself, e.g. the demo's past week).
CREATE TABLE booking_past_reasons (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id bigint NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    staff_id   bigint REFERENCES staff (id),
    starts_at  timestamptz NOT NULL,
    reason     text NOT NULL CHECK (length(reason) BETWEEN 10 AND 500),
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX booking_past_reasons_booking ON booking_past_reasons (booking_id);

-- A clinician caring for a patient refers her to a colleague, who then cares for her too.
CREATE TABLE care_referrals (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    patient_id  bigint NOT NULL REFERENCES patients (id),
    staff_id    bigint NOT NULL REFERENCES staff (id),
    referred_by bigint NOT NULL REFERENCES staff (id),
    at          timestamptz NOT NULL DEFAULT now(),
    CHECK (staff_id <> referred_by),
    UNIQUE (patient_id, staff_id)
);

-- Per staff member, per kind of limited action, per fixed time window: one row counted up
-- atomically (INSERT ... ON CONFLICT DO UPDATE ... RETURNING), never count-then-insert.
CREATE TABLE staff_quotas (
    staff_id     bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    kind         text NOT NULL CHECK (kind ~ '^[a-z_]{2,40}$'),
    window_start timestamptz NOT NULL,
    used         integer NOT NULL CHECK (used > 0),
    PRIMARY KEY (staff_id, kind, window_start)
);
