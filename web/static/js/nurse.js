// The nurse console: keeps each visit's state current (not arrived, checked in, at the kiosk,
// in the call, finished) by asking /nurse/state every few seconds. The page works without
// it (its Refresh link); forms being filled in are never touched.

import { reportError } from "./client-errors.js";
import { t } from "./i18n-client.js";

const REFRESH_MS = 5000;
const FAILED_MAX = 6; // then stop asking until the page is reloaded

let failed = 0;

function apply(bookings) {
  for (const b of bookings) {
    for (const el of document.querySelectorAll(`[data-state-of="${b.id}"]`)) {
      if (el.dataset.state === b.state) continue;
      el.dataset.state = b.state;
      el.textContent = t(b.state);
    }
  }
}

async function refresh() {
  try {
    const resp = await fetch("/nurse/state", { credentials: "same-origin",
      headers: { Accept: "application/json" } });
    if (!resp.ok) throw new Error(`state ${resp.status}`);
    apply((await resp.json()).bookings);
    failed = 0;
  } catch (err) {
    failed += 1;
    if (failed === FAILED_MAX) reportError(err, { where: "nurse-state" });
  }
  if (failed < FAILED_MAX) window.setTimeout(refresh, REFRESH_MS);
}

window.setTimeout(refresh, REFRESH_MS);
