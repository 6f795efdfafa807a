-- Safety for sensitive services (docs/protocol.md, "Safety").

-- A guest link the clinician revoked opens nothing more; its row stays for the record.
ALTER TABLE signaling_guests ADD COLUMN revoked_at timestamptz;

-- The code word agreed at booking, as HMAC-SHA256 with the server's secret key of its
-- normalised form (server/consultations/code_word.py): a copy of the disk does not reveal it.
ALTER TABLE bookings ADD COLUMN code_word_hash bytea
    CHECK (code_word_hash IS NULL OR length(code_word_hash) = 32);
