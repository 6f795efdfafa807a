-- Erasure that a copy of the data directory cannot undo (docs/records.md, "Erasure and
-- backups"). Every note's data keys are wrapped by a key derived from a patient key and a day
-- key that live only in the keyring file; this table names them (ids, never key material) so
-- that their use and their destruction are serialised by row locks: a note is never written
-- under a key an erasure is destroying.
CREATE TABLE record_keys (
    id           text PRIMARY KEY CHECK (id ~ '^(p[0-9]{1,19}|d[0-9]{8})-[0-9a-f]{6,32}$'),
    patient_id   bigint REFERENCES patients (id),
    day          date,
    created_at   timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz,
    CHECK ((patient_id IS NULL) <> (day IS NULL))
);
-- One live key per patient (a patient erased and seen again gets a new one); one key per day
-- ever (a destroyed day is in the past: no note is written on it again).
CREATE UNIQUE INDEX record_keys_patient ON record_keys (patient_id) WHERE destroyed_at IS NULL;
CREATE UNIQUE INDEX record_keys_day ON record_keys (day);

CREATE FUNCTION record_keys_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' OR NEW.id <> OLD.id OR NEW.patient_id IS DISTINCT FROM OLD.patient_id
       OR NEW.day IS DISTINCT FROM OLD.day
       OR (OLD.destroyed_at IS NOT NULL AND NEW.destroyed_at IS DISTINCT FROM OLD.destroyed_at)
    THEN
        RAISE EXCEPTION 'a record key is only ever marked destroyed, once'
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER record_keys_guard BEFORE UPDATE OR DELETE ON record_keys
    FOR EACH ROW EXECUTE FUNCTION record_keys_guard();

-- Break-glass reasons often name clinical facts: sealed like notes, under the note's keys.
-- "reason" keeps the plaintext of rows written before this migration until `casa keys
-- rotate` seals them; erasure clears it.
ALTER TABLE break_glass ALTER COLUMN reason DROP NOT NULL;
ALTER TABLE break_glass DROP CONSTRAINT break_glass_reason_check;
ALTER TABLE break_glass ADD COLUMN reason_ciphertext bytea;
ALTER TABLE break_glass ADD COLUMN reason_wrapped_key bytea;
ALTER TABLE break_glass ADD COLUMN reason_kek_id text;
UPDATE break_glass g SET reason = NULL FROM notes n WHERE n.id = g.note_id
    AND n.erased_at IS NOT NULL;

-- No statistics on key or ciphertext columns: ANALYZE would copy a sample of their values
-- into pg_statistic, where erasure never reaches. Existing statistics are cleared.
ALTER TABLE note_versions ALTER COLUMN ciphertext SET STATISTICS 0;
ALTER TABLE note_versions ALTER COLUMN wrapped_key SET STATISTICS 0;
ALTER TABLE break_glass ALTER COLUMN reason SET STATISTICS 0;
ALTER TABLE break_glass ALTER COLUMN reason_ciphertext SET STATISTICS 0;
ALTER TABLE break_glass ALTER COLUMN reason_wrapped_key SET STATISTICS 0;
DO $$
BEGIN
    IF to_regprocedure('pg_clear_attribute_stats(text, text, name, boolean)') IS NOT NULL THEN
        -- PostgreSQL 18 and later: allowed to the table's owner.
        PERFORM pg_clear_attribute_stats('public', t, c, false)
        FROM (VALUES ('note_versions', 'ciphertext'), ('note_versions', 'wrapped_key'),
                     ('break_glass', 'reason')) AS cols (t, c);
    ELSE
        -- Older servers: only a superuser may touch pg_statistic (the docker image's owner is).
        BEGIN
            DELETE FROM pg_statistic s USING pg_attribute a
            WHERE a.attrelid = s.starelid AND a.attnum = s.staattnum
              AND ((a.attrelid = 'note_versions'::regclass
                    AND a.attname IN ('ciphertext', 'wrapped_key'))
                   OR (a.attrelid = 'break_glass'::regclass AND a.attname = 'reason'));
        EXCEPTION WHEN insufficient_privilege THEN
            RAISE WARNING 'clear the statistics of note_versions.ciphertext, wrapped_key and '
                          'break_glass.reason as a superuser (docs/records.md)';
        END;
    END IF;
END $$;

-- `casa keys rotate` looks for first-layout rows (a master key id, no patient/day pair).
CREATE INDEX note_versions_legacy ON note_versions (note_id, version)
    WHERE wrapped_key IS NOT NULL AND strpos(kek_id, '/') = 0;
