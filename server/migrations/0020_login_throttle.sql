-- Login, second-factor and join-code attempts, one counter row per key ('ip:…', 'pair:…',
-- 'account:…', 'totp:…', 'join:…'). An attempt is recorded before its password or code is
-- checked, by one UPSERT that takes the row lock, so parallel attempts on one key queue on the
-- row and can never check more than the limit allows (a count followed by an insert could).
CREATE TABLE login_throttle (
    key          text PRIMARY KEY,
    attempts     integer NOT NULL CHECK (attempts >= 0),
    window_start timestamptz NOT NULL,     -- when the current counting window opened
    next_at      timestamptz NOT NULL,     -- no attempt on this key before (progressive delays)
    last_at      timestamptz NOT NULL      -- the last attempt, to forget quiet keys
);
CREATE INDEX login_throttle_last ON login_throttle (last_at);
