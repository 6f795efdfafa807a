-- Bookings: resources, services, availability, bookings, consultations, patient credentials.
-- The database itself refuses a double booking: a clinician, a patient and a kiosk can each be
-- in at most one live booking at any moment (exclusion constraints; cancelled ones do not count).
CREATE EXTENSION IF NOT EXISTS btree_gist;

-- Rooms and kiosks of a centre. Only kiosks are booked (kiosk video consultations).
CREATE TABLE resources (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    centre_id text NOT NULL REFERENCES centres (id),
    kind      text NOT NULL CHECK (kind IN ('room', 'kiosk')),
    name      text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    active    boolean NOT NULL DEFAULT true,
    UNIQUE (centre_id, name)
);

CREATE TABLE services (
    code            text PRIMARY KEY,
    name            text NOT NULL,               -- English msgid, translated where shown
    default_minutes integer NOT NULL CHECK (default_minutes BETWEEN 5 AND 240),
    roles           staff_role[] NOT NULL CHECK (cardinality(roles) > 0),
    modes           text[] NOT NULL CHECK (cardinality(modes) > 0
                        AND modes <@ ARRAY['home_video', 'kiosk_video', 'in_person']),
    -- Psychological, psychiatric and violence-support: never named in notifications.
    sensitive       boolean NOT NULL,
    sort_order      integer NOT NULL DEFAULT 0
);

INSERT INTO services (code, name, default_minutes, roles, modes, sensitive, sort_order) VALUES
 ('gp_visit', 'GP visit', 20, '{gp}', '{home_video,kiosk_video,in_person}', false, 1),
 ('psych_session', 'Psychological session', 50, '{psychologist}',
  '{home_video,kiosk_video,in_person}', true, 2),
 ('psychiatric_followup', 'Psychiatric follow-up', 30, '{gp,psychologist}',
  '{home_video,kiosk_video,in_person}', true, 3),
 ('nurse_visit', 'Community-nurse visit', 30, '{nurse}', '{home_video,kiosk_video,in_person}',
  false, 4),
 ('violence_support', 'Violence-support listening session', 60, '{psychologist}',
  '{home_video,kiosk_video,in_person}', true, 5),
 ('vaccination', 'Vaccination', 15, '{nurse,gp}', '{in_person}', false, 6);

-- Weekly recurring hours per clinician per centre, in the centre's local (Europe/Rome) time.
CREATE TABLE availability (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_id    bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    centre_id   text NOT NULL REFERENCES centres (id),
    weekday     smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),  -- 0 = Monday
    starts      time NOT NULL,
    ends        time NOT NULL,
    valid_from  date NOT NULL DEFAULT '2000-01-01',
    valid_until date NOT NULL DEFAULT '2999-12-31',
    CHECK (starts < ends),
    CHECK (valid_from <= valid_until)
);
CREATE INDEX availability_staff ON availability (staff_id, centre_id);

-- Leave (removes hours, at every centre when centre_id is NULL) and extra hours (adds them).
CREATE TABLE availability_exceptions (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_id  bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    centre_id text REFERENCES centres (id),
    kind      text NOT NULL CHECK (kind IN ('leave', 'extra')),
    during    tstzrange NOT NULL CHECK (NOT isempty(during)),
    CHECK (kind = 'leave' OR centre_id IS NOT NULL)
);
CREATE INDEX availability_exceptions_staff ON availability_exceptions USING gist (staff_id, during);

-- Statuses are FHIR R4 Appointment.status codes.
CREATE TABLE bookings (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    centre_id    text NOT NULL REFERENCES centres (id),
    service_code text NOT NULL REFERENCES services (code),
    mode         text NOT NULL CHECK (mode IN ('home_video', 'kiosk_video', 'in_person')),
    patient_id   bigint NOT NULL REFERENCES patients (id),
    clinician_id bigint NOT NULL REFERENCES staff (id),
    kiosk_id     bigint REFERENCES resources (id),
    nurse_id     bigint REFERENCES staff (id),
    during       tstzrange NOT NULL CHECK (NOT isempty(during) AND lower_inc(during)
                     AND NOT upper_inc(during) AND NOT lower_inf(during) AND NOT upper_inf(during)),
    status       text NOT NULL DEFAULT 'booked' CHECK (status IN ('proposed', 'pending', 'booked',
                     'arrived', 'fulfilled', 'cancelled', 'noshow', 'entered-in-error',
                     'checked-in', 'waitlist')),
    cancel_reason text CHECK (length(cancel_reason) <= 500),
    created_by   bigint REFERENCES staff (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CHECK ((mode = 'kiosk_video') = (kiosk_id IS NOT NULL)),
    CHECK (nurse_id IS NULL OR mode = 'kiosk_video'),
    -- Live bookings only: a cancelled, erroneous or missed booking frees its time.
    CONSTRAINT bookings_no_clinician_overlap EXCLUDE USING gist
        (clinician_id WITH =, during WITH &&)
        WHERE (status NOT IN ('cancelled', 'entered-in-error', 'noshow', 'waitlist')),
    CONSTRAINT bookings_no_patient_overlap EXCLUDE USING gist
        (patient_id WITH =, during WITH &&)
        WHERE (status NOT IN ('cancelled', 'entered-in-error', 'noshow', 'waitlist')),
    CONSTRAINT bookings_no_kiosk_overlap EXCLUDE USING gist
        (kiosk_id WITH =, during WITH &&)
        WHERE (kiosk_id IS NOT NULL
               AND status NOT IN ('cancelled', 'entered-in-error', 'noshow', 'waitlist'))
);
CREATE INDEX bookings_centre_time ON bookings USING gist (centre_id, during);
CREATE INDEX bookings_patient ON bookings (patient_id);

-- One per video booking. The join window is stored (from the configuration at booking time,
-- moved on reschedule) so that every reader agrees on it without the configuration.
CREATE TABLE consultations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id       bigint NOT NULL UNIQUE REFERENCES bookings (id) ON DELETE CASCADE,
    room_id          text NOT NULL UNIQUE CHECK (room_id ~ '^[A-Za-z0-9_-]{16,64}$'),
    join_opens_at    timestamptz NOT NULL,
    join_closes_at   timestamptz NOT NULL,
    state            text NOT NULL DEFAULT 'scheduled'
                         CHECK (state IN ('scheduled', 'waiting', 'in_call', 'ended')),
    first_arrived_at timestamptz,
    admitted_at      timestamptz,
    ended_at         timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    CHECK (join_opens_at < join_closes_at)
);

-- Clinicians or interpreters added to a consultation beyond the booking's clinician.
CREATE TABLE consultation_participants (
    consultation_id bigint NOT NULL REFERENCES consultations (id) ON DELETE CASCADE,
    staff_id        bigint NOT NULL REFERENCES staff (id),
    added_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consultation_id, staff_id)
);

-- Append-only history, for reporting.
CREATE TABLE consultation_events (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consultation_id bigint NOT NULL REFERENCES consultations (id) ON DELETE CASCADE,
    event           text NOT NULL CHECK (event IN ('arrived', 'admitted', 'sent_back', 'ended',
                        'participant_joined', 'participant_left')),
    staff_id        bigint REFERENCES staff (id),
    detail          jsonb NOT NULL DEFAULT '{}'::jsonb,
    at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consultation_events_consultation ON consultation_events (consultation_id, at);

-- Patient credentials, stored only as hashes: the invitation link token ('link'), the 6-digit
-- code ('code', an HMAC under the secret key since six digits alone are easy to reverse), and
-- the session issued once a link or code was accepted ('session', held in a cookie).
CREATE TABLE patient_credentials (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    consultation_id bigint NOT NULL REFERENCES consultations (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('link', 'code', 'session')),
    token_hash      bytea NOT NULL,
    valid_from      timestamptz NOT NULL,
    valid_until     timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_used_at    timestamptz,
    revoked_at      timestamptz,
    failed_attempts integer NOT NULL DEFAULT 0,
    CHECK (valid_from < valid_until)
);
CREATE UNIQUE INDEX patient_credentials_token ON patient_credentials (token_hash)
    WHERE kind <> 'code';
-- Two live codes never share a value, so a code + date of birth names one consultation.
ALTER TABLE patient_credentials ADD CONSTRAINT patient_credentials_code_unique EXCLUDE USING gist
    (token_hash WITH =, tstzrange(valid_from, valid_until) WITH &&)
    WHERE (kind = 'code' AND revoked_at IS NULL);
CREATE INDEX patient_credentials_consultation ON patient_credentials (consultation_id, kind);

-- Invitation messages waiting to be sent, and their attempts. Nothing is lost: a failed send
-- stays here with its next attempt time.
CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id    bigint REFERENCES bookings (id) ON DELETE SET NULL,
    channel       text NOT NULL CHECK (channel IN ('sms', 'email')),
    recipient     text NOT NULL,
    subject       text,
    body          text NOT NULL,
    ics           text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    attempts      integer NOT NULL DEFAULT 0,
    last_error    text,
    sent_at       timestamptz
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE sent_at IS NULL;

-- API bearer tokens for staff, stored as SHA-256; revocable.
CREATE TABLE api_tokens (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_id    bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    label       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at  timestamptz
);

-- Secret per-clinician calendar feed URLs (hash of the secret path segment).
CREATE TABLE calendar_feeds (
    staff_id    bigint PRIMARY KEY REFERENCES staff (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- FHIR R4 Appointment status changes that Casa allows; anything else is refused by the trigger
-- below, whoever writes the row. server/bookings/status.py holds the same table (a test checks).
CREATE TABLE booking_status_transitions (
    from_status text NOT NULL,
    to_status   text NOT NULL,
    PRIMARY KEY (from_status, to_status)
);
INSERT INTO booking_status_transitions (from_status, to_status) VALUES
 ('proposed', 'pending'), ('proposed', 'booked'), ('proposed', 'cancelled'),
 ('pending', 'booked'), ('pending', 'cancelled'),
 ('waitlist', 'booked'), ('waitlist', 'cancelled'),
 ('booked', 'checked-in'), ('booked', 'arrived'), ('booked', 'cancelled'), ('booked', 'noshow'),
 ('booked', 'entered-in-error'),
 ('checked-in', 'arrived'), ('checked-in', 'fulfilled'), ('checked-in', 'noshow'),
 ('checked-in', 'entered-in-error'),
 ('arrived', 'fulfilled'), ('arrived', 'entered-in-error');

CREATE FUNCTION bookings_guard_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status <> OLD.status AND NOT EXISTS (
        SELECT 1 FROM booking_status_transitions
        WHERE from_status = OLD.status AND to_status = NEW.status) THEN
        RAISE EXCEPTION 'booking status cannot change from % to %', OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'bookings_status_transition';
    END IF;
    -- Only a booking that has not started its life can move in time.
    IF NEW.during <> OLD.during AND OLD.status NOT IN ('proposed', 'pending', 'booked',
                                                       'waitlist') THEN
        RAISE EXCEPTION 'a booking in status % cannot be rescheduled', OLD.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'bookings_reschedule_status';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER bookings_guard_update BEFORE UPDATE ON bookings
    FOR EACH ROW EXECUTE FUNCTION bookings_guard_update();
