-- Appointment reminders (server/bookings/reminders.py).

-- When the booking got its present time: made, or last moved. A booking made (or moved) less
-- than a reminder's offset before its start gets no reminder for that offset: the invitation
-- has just told the patient. Set by the trigger, so no writer can forget it.
ALTER TABLE bookings ADD COLUMN scheduled_at timestamptz;
UPDATE bookings SET scheduled_at = created_at;
ALTER TABLE bookings ALTER COLUMN scheduled_at SET DEFAULT now(),
                     ALTER COLUMN scheduled_at SET NOT NULL;

CREATE FUNCTION bookings_scheduled_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.during <> OLD.during THEN
        NEW.scheduled_at := now();
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER bookings_scheduled_at BEFORE UPDATE OF during ON bookings
    FOR EACH ROW EXECUTE FUNCTION bookings_scheduled_at();

-- One row per reminder sent: per booking, per offset, per start. The primary key is the claim
-- that makes every instance send a reminder once; a moved booking has a new start, so its
-- reminders are due again for the new time.
CREATE TABLE booking_reminders (
    booking_id     bigint NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    before_minutes integer NOT NULL CHECK (before_minutes > 0),
    starts_at      timestamptz NOT NULL,
    sent_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (booking_id, before_minutes, starts_at)
);

-- The loop looks at booked appointments of the next day or so, by start.
CREATE INDEX bookings_booked_by_start ON bookings (lower(during)) WHERE status = 'booked';
