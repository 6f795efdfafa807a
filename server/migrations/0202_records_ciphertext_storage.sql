-- Ciphertext does not compress, so PostgreSQL's default for bytea (try pglz, then move the value
-- out of line into the TOAST table once a row passes ~2 KB) wastes a compression attempt on
-- every note version and stores a typical 2-4 KB note as a separate TOAST row and index entry,
-- which every read then has to fetch. EXTERNAL skips the compression; the higher
-- toast_tuple_target keeps rows inline up to a page (notes larger than that still go out of
-- line). Affects versions written from now on; older rows are read the same way as before.
ALTER TABLE note_versions ALTER COLUMN ciphertext SET STORAGE EXTERNAL;
ALTER TABLE note_versions SET (toast_tuple_target = 8160);
