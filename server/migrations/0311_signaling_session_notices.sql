-- A staff session that stops being live (logged out, revoked, deleted) is announced on the
-- channel casa_session with the staff member's id only, so every instance closes that
-- person's sockets at once instead of re-reading every session of every socket twice a
-- second. (Expiry by time is caught by a slower sweep.)
CREATE FUNCTION casa_session_ended() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('casa_session', OLD.staff_id::text);
    RETURN NULL;
END $$;

CREATE TRIGGER staff_sessions_ended
    AFTER UPDATE OF revoked_at, mfa_pending, expires_at ON staff_sessions
    FOR EACH ROW
    WHEN (NEW.revoked_at IS DISTINCT FROM OLD.revoked_at
          OR NEW.mfa_pending IS DISTINCT FROM OLD.mfa_pending
          OR NEW.expires_at < OLD.expires_at)
    EXECUTE FUNCTION casa_session_ended();

CREATE TRIGGER staff_sessions_deleted
    AFTER DELETE ON staff_sessions
    FOR EACH ROW EXECUTE FUNCTION casa_session_ended();
