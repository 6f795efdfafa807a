// The nurse's tele-monitoring worklist: asks /monitoring/version (a number that changes when
// any alert is raised or moved: two index lookups, no names) twice a second, and only when it
// changed fetches the list again and puts it in place. An alert raised by a patient's reading
// is on the list within a second; a page without script has the plain list.
import { reportError } from './client-errors.js';

const POLL_MS = 500;
const FAILED_MAX = 20; // then stop asking until the page is reloaded

let failed = 0;

async function poll() {
  const list = document.getElementById('m-worklist');
  try {
    const resp = await fetch('/monitoring/version', { headers: { Accept: 'application/json' } });
    if (!resp.ok) throw new Error(`version ${resp.status}`);
    const { version } = await resp.json();
    if (version !== list.dataset.version && !list.contains(document.activeElement)) {
      const part = await fetch('/monitoring/worklist', { headers: { Accept: 'text/html' } });
      if (!part.ok) throw new Error(`worklist ${part.status}`);
      const doc = new DOMParser().parseFromString(await part.text(), 'text/html');
      const fresh = doc.getElementById('m-worklist');
      if (fresh) list.replaceWith(document.adoptNode(fresh));
    }
    failed = 0;
  } catch (err) {
    failed += 1;
    if (failed === FAILED_MAX) reportError(err, { where: 'monitoring-worklist' });
  }
  if (failed < FAILED_MAX) window.setTimeout(poll, POLL_MS);
}

window.setTimeout(poll, POLL_MS);
