-- The patient's record is read a page at a time, newest first (records/store.py notes_page):
-- keyset paging on (created_at, id) reads only the page, however many notes the patient has.
CREATE INDEX notes_patient_page ON notes (patient_id, created_at DESC, id DESC);
