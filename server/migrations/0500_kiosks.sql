-- Kiosk enrolment: a browser at a centre becomes one of the centre's kiosks (resources of kind
-- 'kiosk') by typing a one-time code an admin or coordinator made for it. Both the code and
-- the long-lived credential the browser then holds are stored only as hashes.
CREATE TABLE kiosk_enrolment_codes (
    id          bigserial PRIMARY KEY,
    kiosk_id    bigint NOT NULL REFERENCES resources (id),
    code_hash   bytea NOT NULL UNIQUE,
    created_by  bigint NOT NULL REFERENCES staff (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX kiosk_enrolment_codes_kiosk ON kiosk_enrolment_codes (kiosk_id);

-- One row per enrolled browser. Revoking sets revoked_at; a kiosk has at most one live
-- credential (a new enrolment revokes the old one).
CREATE TABLE kiosk_credentials (
    id            bigserial PRIMARY KEY,
    kiosk_id      bigint NOT NULL REFERENCES resources (id),
    token_hash    bytea NOT NULL UNIQUE,
    enrolled_at   timestamptz NOT NULL DEFAULT now(),
    enrolled_by   bigint NOT NULL REFERENCES staff (id),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE UNIQUE INDEX kiosk_credentials_one_live ON kiosk_credentials (kiosk_id)
    WHERE revoked_at IS NULL;
