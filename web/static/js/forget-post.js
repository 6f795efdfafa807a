// On every page that answers a POST (a refused join, a form sent back with its errors).
// The browser keeps a POST answer's request body with the tab: in its session-restore files on
// disk, and to send again when someone presses Back or reloads. That body is what was typed:
// a join code and date of birth, a patient's details, a reason. Replacing this history entry
// (same address) makes it a plain GET entry without a body, so nothing of it stays behind.
history.replaceState(null, "", location.href);
