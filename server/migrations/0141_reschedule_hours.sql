-- A coordinator's reason for moving a booking outside its clinician's hours (weekly hours,
-- extra hours, leave): server/bookings/hours.py and workflow.reschedule.
CREATE TABLE booking_hours_overrides (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id bigint NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    staff_id   bigint REFERENCES staff (id),
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL,
    refusal    text NOT NULL CHECK (refusal IN ('outside_hours', 'leave')),
    reason     text NOT NULL CHECK (length(reason) BETWEEN 10 AND 500),
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX booking_hours_overrides_booking ON booking_hours_overrides (booking_id);
