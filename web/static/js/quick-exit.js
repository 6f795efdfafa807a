// Quick exit (sensitive consultations and the join form): the large "Quick exit" button, or
// Escape pressed twice within a second, leaves at once for a neutral page. The page's own
// cleanups run first (camera and microphone stopped, the signalling socket closed), then
// location.replace swaps this page's history entry for the neutral one, so Back does not bring
// the consultation back. Nothing is asked and nothing waits.

const EXIT_URL = '/away';
const DOUBLE_ESCAPE_MS = 1000;
const cleanups = [];
let lastEscape = -Infinity;

// The consultation page registers how to end its media and its socket.
export function onQuickExit(fn) { cleanups.push(fn); }

export function quickExit() {
  for (const fn of cleanups) {
    try { fn(); } catch { /* leaving matters more than a clean stop */ }
  }
  location.replace(EXIT_URL);
}

// `now` is the event's time stamp, so the double press is judged by when the keys were pressed.
export function escapePressed(now) {
  const twice = now - lastEscape <= DOUBLE_ESCAPE_MS;
  lastEscape = twice ? -Infinity : now;
  if (twice) quickExit();
  return twice;
}

// Armed only where the page shows the button: a clinician's Escape closes dialogs, nothing else.
const button = document.getElementById('quick-exit');
if (button) {
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') escapePressed(event.timeStamp);
  }, true);
  button.addEventListener('click', (event) => {
    event.preventDefault();
    quickExit();
  });
}
