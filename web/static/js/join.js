// The join form after a refused attempt is the answer to a POST, and the browser keeps a POST
// answer's request body (the code and the date of birth) with the tab: in its session-restore
// files on disk, and for the Back button to send again. Turning this history entry into a plain
// GET of /join drops that body, so the next person at a kiosk finds nothing to resubmit.
if (document.querySelector(".join-form[data-refused]")) {
  history.replaceState(null, "", location.pathname);
}
