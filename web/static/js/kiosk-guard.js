// Every page of a centre kiosk (base.html adds this module when the browser is an enrolled
// kiosk): nothing of one patient is left for the next. A minute with nobody touching the
// screen, or "Finished" on the end page, wipes the browser back to the languages; the end of
// the visit clears the tab's storage at once. The waiting room and the call are never wiped
// for stillness: a patient waits and talks without touching anything.
import './client-errors.js';
import { $ } from './dom.js';

const WIPE = '/kiosk/wipe';
// The page says how long "idle" is (60 s; tests give a shorter time instead of waiting).
const IDLE_MS = Number(document.body.dataset.kioskIdleMs) || 60000;
const STILL_STAGES = ['stage-waiting', 'stage-call'];

function still() {
  return STILL_STAGES.some((id) => {
    const stage = $(id);
    return stage !== null && !stage.hidden;
  });
}

// Storage, what forms hold, then the server forgets the cookies (all but the kiosk's own)
// and sends Clear-Site-Data; location.replace, so this page is not left in the history for
// Back to show.
export function wipe() {
  sessionStorage.clear();
  localStorage.clear();
  for (const form of document.forms) form.reset();
  location.replace(WIPE);
}

let timer = 0;
function arm() {
  clearTimeout(timer);
  timer = setTimeout(() => {
    if (still()) arm();
    else wipe();
  }, IDLE_MS);
}
for (const type of ['pointerdown', 'keydown', 'touchstart', 'wheel']) {
  addEventListener(type, arm, { capture: true, passive: true });
}
arm();

const done = $('kiosk-done');
if (done !== null) {
  done.addEventListener('click', (event) => {
    event.preventDefault();
    wipe();
  });
}

// The visit is over: the tab's storage (the check passed, "a nurse is with me") goes now,
// and the minute of stillness starts.
const ended = $('stage-ended');
if (ended !== null) {
  new MutationObserver(() => {
    if (!ended.hidden) {
      sessionStorage.clear();
      arm();
    }
  }).observe(ended, { attributes: true, attributeFilter: ['hidden'] });
}

// Pages are no-store, so the browser should never restore one from its back-forward cache;
// if it does, it is wiped rather than shown.
addEventListener('pageshow', (event) => {
  if (event.persisted) wipe();
});
