-- A participant's call page reports how its media went (signalling's media_report): through
-- a TURN relay, fallen back to sound only. Kept as a consultation event for the activity
-- report; its detail holds two flags and a role, never an address or a candidate.
ALTER TABLE consultation_events DROP CONSTRAINT consultation_events_event_check;
ALTER TABLE consultation_events ADD CONSTRAINT consultation_events_event_check
    CHECK (event IN ('arrived', 'admitted', 'sent_back', 'ended', 'participant_joined',
                     'participant_left', 'media_path'));
