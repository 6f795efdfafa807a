-- Notes belong to a booking (the consultation) and to that booking's patient. The bookings
-- migration (0100) was committed while 0200 was being written; this ties the two together.
ALTER TABLE notes ADD CONSTRAINT notes_booking_fkey FOREIGN KEY (booking_id)
    REFERENCES bookings (id);

CREATE FUNCTION notes_booking_patient() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM bookings WHERE id = NEW.booking_id
                   AND patient_id = NEW.patient_id) THEN
        RAISE EXCEPTION 'note patient % is not the patient of booking %', NEW.patient_id,
            NEW.booking_id USING ERRCODE = 'foreign_key_violation',
            CONSTRAINT = 'notes_booking_patient';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER notes_booking_patient BEFORE INSERT ON notes
    FOR EACH ROW EXECUTE FUNCTION notes_booking_patient();
