-- Foundation: centres, staff and their sessions, patients.
CREATE EXTENSION IF NOT EXISTS btree_gist;

CREATE TABLE centres (
    id            text PRIMARY KEY,              -- stable slug, e.g. 'san-siro'
    name          text NOT NULL UNIQUE,
    address       text NOT NULL,
    phone         text,
    opening_hours jsonb NOT NULL DEFAULT '{}'::jsonb,  -- {"mon": [["08:30","13:00"]], ...}
    timezone      text NOT NULL DEFAULT 'Europe/Rome'
);

CREATE TYPE staff_role AS ENUM ('admin', 'coordinator', 'gp', 'psychologist', 'nurse');

CREATE TABLE staff (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email          text NOT NULL,
    full_name      text NOT NULL,
    role           staff_role NOT NULL,
    password_hash  text NOT NULL,
    language       text NOT NULL DEFAULT 'it' CHECK (language IN ('it', 'en')),
    totp_secret    bytea,                        -- encrypted with a key derived from the secret key
    totp_last_step bigint,                       -- refuses a code replayed in the same time step
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX staff_email_key ON staff (lower(email));

CREATE TABLE staff_centres (
    staff_id  bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    centre_id text   NOT NULL REFERENCES centres (id),
    PRIMARY KEY (staff_id, centre_id)
);

-- Server-side sessions. Only a hash of the cookie value is stored, so a database dump
-- cannot be replayed as cookies.
CREATE TABLE staff_sessions (
    token_hash    bytea PRIMARY KEY,
    staff_id      bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL,          -- absolute expiry
    mfa_pending   boolean NOT NULL DEFAULT false, -- password ok, second factor still owed
    revoked_at    timestamptz
);
CREATE INDEX staff_sessions_staff ON staff_sessions (staff_id);

-- Failed logins, counted over a sliding window per account and per address.
CREATE TABLE login_failures (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope     text NOT NULL CHECK (scope IN ('account', 'ip')),
    subject   text NOT NULL,                     -- lower-cased e-mail, or client address
    at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_lookup ON login_failures (scope, subject, at);

CREATE TABLE patients (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    given_name      text NOT NULL CHECK (length(given_name) BETWEEN 1 AND 200),
    family_name     text NOT NULL CHECK (length(family_name) BETWEEN 1 AND 200),
    date_of_birth   date NOT NULL CHECK (date_of_birth > '1900-01-01'),
    phone           text,
    email           text,
    language        text NOT NULL DEFAULT 'it',
    codice_fiscale  text UNIQUE CHECK (codice_fiscale ~ '^[A-Z0-9]{16}$'),
    home_centre_id  text REFERENCES centres (id),
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX patients_name ON patients (lower(family_name), lower(given_name));
