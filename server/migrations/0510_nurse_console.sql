-- The nurse console (server/nurse): the booking's nurse declares she is with the kiosk
-- patient. Kept on the consultation, so a patient who arrives after the declaration (or comes
-- back) is listed to the clinician with her nurse; cleared when the nurse hands over or leaves.
ALTER TABLE consultations
    ADD COLUMN nurse_present_at timestamptz,
    ADD COLUMN nurse_present_by bigint REFERENCES staff (id);
