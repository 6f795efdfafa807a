-- Signalling: who is where in a consultation, so that the waiting room and a patient's place in
-- the call survive a page reload, a server restart and a move to another instance.

-- Live Casa processes; a participant's socket counts only while its instance beats.
CREATE TABLE signaling_instances (
    id           text PRIMARY KEY CHECK (length(id) BETWEEN 8 AND 64),
    started_at   timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now()
);

-- One row per person per consultation: 'patient', 'staff:<id>' or 'guest:<id>'.
CREATE TABLE signaling_participants (
    consultation_id bigint NOT NULL REFERENCES consultations (id) ON DELETE CASCADE,
    participant     text NOT NULL CHECK (participant ~ '^(patient|staff:[0-9]+|guest:[0-9]+)$'),
    peer_id         text NOT NULL UNIQUE CHECK (length(peer_id) BETWEEN 8 AND 40),
    role            text NOT NULL CHECK (role IN ('patient', 'clinician', 'guest')),
    status          text NOT NULL CHECK (status IN ('waiting', 'in_call', 'left')),
    -- The instance holding its socket now; NULL while disconnected (its place is kept a while).
    instance_id     text,
    arrived_at      timestamptz NOT NULL DEFAULT now(),   -- waiting since / in the call since
    last_seen_at    timestamptz NOT NULL DEFAULT now(),   -- when the socket dropped
    -- Where the patient is: {"from": "home"|"kiosk", "kiosk_id", "nurse_present", "lang"}.
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (consultation_id, participant),
    CHECK ((role = 'patient') = (participant = 'patient'))
);
CREATE INDEX signaling_participants_instance ON signaling_participants (instance_id)
    WHERE instance_id IS NOT NULL;

-- One-off links for a guest (an interpreter without an account). Only the hash is kept.
CREATE TABLE signaling_guests (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consultation_id bigint NOT NULL REFERENCES consultations (id) ON DELETE CASCADE,
    token_hash      bytea NOT NULL UNIQUE,
    label           text CHECK (length(label) <= 60),
    created_by      bigint NOT NULL REFERENCES staff (id),
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);

-- Relayed messages too large for a NOTIFY payload (8000 bytes) cross instances by reference.
CREATE UNLOGGED TABLE signaling_relay (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    payload    text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
