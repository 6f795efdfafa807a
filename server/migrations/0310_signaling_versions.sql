-- Every change of a participant's row gets a higher version, so an instance that hears of
-- changes out of order (its own arrival announced after an admit it already heard of, a
-- member event crossing a reload from the database) keeps the newest and drops the stale.
ALTER TABLE signaling_participants ADD COLUMN version bigint NOT NULL DEFAULT 1;
