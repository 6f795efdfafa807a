-- Invitations staff can act on (docs/bookings.md, "Invitations").

-- What a message is, so the booking page can show the invitation's state apart from other
-- messages of the booking: 'invitation' (booked or rescheduled), 'resend' (a member of staff
-- sent it again), 'cancellation'. NULL for rows written before this column and for messages
-- queued by other parts of Casa without a kind.
ALTER TABLE outbox ADD COLUMN kind text
    CHECK (kind IS NULL OR kind IN ('invitation', 'resend', 'cancellation'));
-- When a message failed for good (the provider refused it: not retried).
ALTER TABLE outbox ADD COLUMN failed_at timestamptz;
CREATE INDEX outbox_booking ON outbox (booking_id, channel, id) WHERE booking_id IS NOT NULL;

-- A join code a member of staff just issued, waiting to be shown to her once ("read it over the
-- phone", the printed invitation). The code is sealed (AES-GCM under a key derived from
-- CASA_SECRET_KEY, bound to the row's booking, staff member and purpose), so a copy of the
-- database does not reveal it; the page that shows it deletes the row in the same statement
-- that reads it, so a reload or Back finds nothing. Rows not shown within minutes are purged.
CREATE TABLE join_code_reveals (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    booking_id  bigint NOT NULL REFERENCES bookings (id) ON DELETE CASCADE,
    staff_id    bigint NOT NULL REFERENCES staff (id) ON DELETE CASCADE,
    purpose     text NOT NULL CHECK (purpose IN ('phone', 'print')),
    language    text NOT NULL,
    sealed_code bytea,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL
);
CREATE INDEX join_code_reveals_for ON join_code_reveals (booking_id, staff_id, purpose);

-- Messages queued before this migration: a cancellation notice was queued in the transaction
-- that cancelled its booking (same timestamp); everything else was an invitation.
UPDATE outbox o SET kind = CASE WHEN b.status = 'cancelled' AND o.created_at = b.updated_at
                                THEN 'cancellation' ELSE 'invitation' END
FROM bookings b WHERE b.id = o.booking_id;
