-- Records: encrypted consultation notes, their versions, shares, break-glass, patient summary
-- links, notifications for authors, and the append-only hash-chained audit log.
-- Note content is only ever stored as AES-256-GCM ciphertext (see records/crypto.py).
-- booking_id gets its foreign key to bookings (id), and the check that a note's patient is the
-- booking's patient, in migration 0201.

CREATE TYPE note_category AS ENUM ('gp', 'nurse', 'psychological', 'psychiatric',
                                   'violence_support');

CREATE TABLE notes (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id  bigint NOT NULL,
    patient_id  bigint NOT NULL REFERENCES patients (id),
    category    note_category NOT NULL,
    author_id   bigint NOT NULL REFERENCES staff (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    erased_at   timestamptz
);
CREATE INDEX notes_patient ON notes (patient_id);
CREATE INDEX notes_booking ON notes (booking_id);
CREATE INDEX notes_author ON notes (author_id, patient_id);

-- One row per version. A draft may be re-saved (autosave) until it is signed; a signed row
-- never changes again except for its data key: re-wrapped by rotation or destroyed by erasure.
CREATE TABLE note_versions (
    note_id         bigint NOT NULL REFERENCES notes (id),
    version         integer NOT NULL CHECK (version >= 1),
    author_id       bigint NOT NULL REFERENCES staff (id),
    amends_version  integer,                 -- the signed version this one corrects
    status          text NOT NULL CHECK (status IN ('draft', 'signed')),
    ciphertext      bytea NOT NULL,          -- nonce || AES-256-GCM(ciphertext || tag)
    wrapped_key     bytea,                   -- data key wrapped by kek_id; NULL once erased
    kek_id          text NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    saved_at        timestamptz NOT NULL DEFAULT now(),
    signed_at       timestamptz,
    erased_at       timestamptz,
    PRIMARY KEY (note_id, version),
    FOREIGN KEY (note_id, amends_version) REFERENCES note_versions (note_id, version),
    CHECK ((status = 'signed') = (signed_at IS NOT NULL)),
    CHECK ((version = 1) = (amends_version IS NULL)),
    CHECK (amends_version IS NULL OR amends_version < version),
    CHECK ((wrapped_key IS NULL) = (erased_at IS NOT NULL))
);
-- At most one draft per note: an amendment is started only from a signed note.
CREATE UNIQUE INDEX note_versions_one_draft ON note_versions (note_id) WHERE status = 'draft';
-- Rotation looks for rows still wrapped by an old key.
CREATE INDEX note_versions_kek ON note_versions (kek_id) WHERE wrapped_key IS NOT NULL;

CREATE FUNCTION notes_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'notes are never deleted (erase them instead)'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.id <> OLD.id OR NEW.booking_id <> OLD.booking_id OR NEW.patient_id <> OLD.patient_id
       OR NEW.category <> OLD.category OR NEW.author_id <> OLD.author_id
       OR NEW.created_at <> OLD.created_at
       OR (OLD.erased_at IS NOT NULL AND NEW.erased_at IS DISTINCT FROM OLD.erased_at) THEN
        RAISE EXCEPTION 'a note''s identity cannot change' USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER notes_guard BEFORE UPDATE OR DELETE ON notes
    FOR EACH ROW EXECUTE FUNCTION notes_guard();

CREATE FUNCTION note_versions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'note versions are never deleted (erase them instead)'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    IF NEW.note_id <> OLD.note_id OR NEW.version <> OLD.version
       OR NEW.author_id <> OLD.author_id OR NEW.created_at <> OLD.created_at
       OR NEW.amends_version IS DISTINCT FROM OLD.amends_version THEN
        RAISE EXCEPTION 'a note version''s identity cannot change'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    -- An erased version stays erased: its data key is gone for good.
    IF OLD.erased_at IS NOT NULL AND (NEW.wrapped_key IS NOT NULL
       OR NEW.erased_at IS DISTINCT FROM OLD.erased_at OR NEW.ciphertext <> OLD.ciphertext
       OR NEW.status <> OLD.status) THEN
        RAISE EXCEPTION 'an erased note version cannot change'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    -- A signed version is locked: only its data key may be re-wrapped (rotation) or destroyed
    -- (erasure). Corrections are new versions.
    IF OLD.status = 'signed' AND (NEW.status <> 'signed' OR NEW.ciphertext <> OLD.ciphertext
       OR NEW.signed_at <> OLD.signed_at OR NEW.saved_at <> OLD.saved_at) THEN
        RAISE EXCEPTION 'signed note versions are locked; write an amendment'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER note_versions_guard BEFORE UPDATE OR DELETE ON note_versions
    FOR EACH ROW EXECUTE FUNCTION note_versions_guard();

-- Restricted notes (psychological, psychiatric, violence support) shared by their author.
CREATE TABLE note_shares (
    note_id    bigint NOT NULL REFERENCES notes (id),
    staff_id   bigint NOT NULL REFERENCES staff (id),
    shared_by  bigint NOT NULL REFERENCES staff (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (note_id, staff_id)
);

-- Emergency access to a restricted note, for a bounded time, with a stated reason. The reason
-- is an access justification shown to the author, not note content.
CREATE TABLE break_glass (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    note_id    bigint NOT NULL REFERENCES notes (id),
    staff_id   bigint NOT NULL REFERENCES staff (id),
    reason     text NOT NULL CHECK (length(reason) BETWEEN 10 AND 1000),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX break_glass_lookup ON break_glass (note_id, staff_id, expires_at);

-- Things an author must be told (someone broke the glass on their note).
CREATE TABLE records_notifications (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    staff_id   bigint NOT NULL REFERENCES staff (id),
    kind       text NOT NULL CHECK (kind IN ('break_glass')),
    note_id    bigint NOT NULL REFERENCES notes (id),
    actor_id   bigint NOT NULL REFERENCES staff (id),
    break_glass_id bigint REFERENCES break_glass (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz
);
CREATE INDEX records_notifications_staff ON records_notifications (staff_id, created_at DESC);

-- A patient reads the plain-language summary of a signed version through a link; only the
-- SHA-256 of the link's token is stored.
CREATE TABLE summary_links (
    token_hash  bytea PRIMARY KEY,
    note_id     bigint NOT NULL REFERENCES notes (id),
    version     integer NOT NULL,
    created_by  bigint NOT NULL REFERENCES staff (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    FOREIGN KEY (note_id, version) REFERENCES note_versions (note_id, version)
);

-- The audit log: append-only, each row carrying the hash of the previous one
-- (hash = sha256(prev_hash || canonical JSON of the row), computed in records/audit.py).
CREATE TABLE audit_log (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at             timestamptz NOT NULL,
    action         text NOT NULL CHECK (action ~ '^[a-z_]{2,40}$'),
    actor_staff_id bigint,
    actor_kind     text NOT NULL CHECK (actor_kind IN ('staff', 'patient', 'system', 'cli')),
    patient_id     bigint,
    booking_id     bigint,
    detail         jsonb NOT NULL DEFAULT '{}'::jsonb,
    prev_hash      bytea NOT NULL CHECK (length(prev_hash) = 32),
    hash           bytea NOT NULL UNIQUE CHECK (length(hash) = 32)
);
CREATE INDEX audit_log_patient ON audit_log (patient_id, at);
CREATE INDEX audit_log_actor ON audit_log (actor_staff_id, at);
CREATE INDEX audit_log_at ON audit_log (at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only' USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
