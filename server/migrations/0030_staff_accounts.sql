-- Staff accounts run by admins (server/accounts): which device each session is on, a handle
-- for a session that is not its token, and one-time links to set a password.

-- A session is listed and revoked by this id; the token (and its hash) never leaves the server.
ALTER TABLE staff_sessions ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY UNIQUE;
-- "Firefox on Android": browser and system family only, read from User-Agent at sign-in.
ALTER TABLE staff_sessions ADD COLUMN device text;

-- A new account, or one whose password an admin reset, gets a link to choose a password:
-- nobody but its owner ever knows the password. Only the SHA-256 of the link's token is kept.
CREATE TABLE staff_password_links (
    token_hash  bytea PRIMARY KEY,
    staff_id    bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    created_by  bigint REFERENCES staff (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX staff_password_links_staff ON staff_password_links (staff_id);
