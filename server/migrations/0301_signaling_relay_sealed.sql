-- Relays too large for a NOTIFY payload cross instances by reference through this table. They
-- hold SDP (network addresses of a patient's devices) and, in principle, any relayed frame, so
-- they are stored sealed (AES-256-GCM under a key derived from CASA_SECRET_KEY, which every
-- instance shares) and deleted once every instance meant to read them has: a row lives for
-- milliseconds, and at most a minute (the watcher's purge) if a reader died. The old text
-- column is dropped with its rows: they were transient, at most a minute old.
DROP TABLE signaling_relay;
CREATE UNLOGGED TABLE signaling_relay (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- nonce (12 bytes) || ciphertext || tag (16 bytes)
    sealed     bytea NOT NULL CHECK (length(sealed) > 28),
    -- How many instances must read it before it is deleted, and how many have.
    readers    integer NOT NULL CHECK (readers >= 1),
    reads      integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
-- Ciphertext does not compress: do not try.
ALTER TABLE signaling_relay ALTER COLUMN sealed SET STORAGE EXTERNAL;
