// The waiting list as the clinician's pages show it (the dashboard and the call page's panel):
// a waiting entry's details (docs/protocol.md, "waiting entry"), and the chime and the tab
// title that tell a clinician busy in another tab that someone arrived.

import { reportError } from './client-errors.js';
import { t, timeOf } from './i18n-client.js';

// "ro" -> "rumeno" on an Italian page: the browser knows the names (CLDR), as Babel does for
// the server-rendered rows.
export function languageName(code) {
  try {
    return new Intl.DisplayNames([document.documentElement.lang || 'it'], { type: 'language' })
      .of(code) || code;
  } catch {
    return code;
  }
}

// "Waiting since 10:02 · from home · a nurse is with them · Romanian".
export function waitingDetails(e) {
  const parts = [e.state === 'away' ? t('entry_away') : t('waiting_status', { time: timeOf(e.since) }),
    t(e.from === 'kiosk' ? 'from_kiosk' : 'from_home')];
  if (e.nurse_present) parts.push(t('nurse_present'));
  if (e.safe) parts.push(t('safe_' + e.safe));
  if (e.language) parts.push(languageName(e.language));
  return parts.join(' · ');
}

export function playChime(url) {
  new Audio(url).play().catch((err) => {
    // A browser that allows no sound before the person touched the page (autoplay rules)
    // refuses it: expected, the title and the page still say who arrived.
    if (err.name !== 'NotAllowedError' && err.name !== 'AbortError') reportError(err);
  });
}

export class Arrivals {
  constructor(chime) {
    this.chime = chime;
    this.seen = new Set();
    this.first = true;
    this.baseTitle = document.title;
  }

  // Takes a waiting list and the number of people who can be let in now; returns the first
  // entry that arrived in the waiting room since the last list (after a chime), or null. The
  // page's first list announces nobody: they were there before the page opened.
  update(entries, admittable) {
    document.title = admittable
      ? `${t('title_waiting', { count: admittable })} ${this.baseTitle}` : this.baseTitle;
    const arrived = entries.find((e) => e.state === 'waiting' && e.peer_id && !this.seen.has(e.peer_id));
    for (const e of entries) {
      if (!e.peer_id) continue;
      if (e.state === 'waiting') this.seen.add(e.peer_id);
      else if (e.state === 'left' || e.state === 'ended') this.seen.delete(e.peer_id);
    }
    const first = this.first;
    this.first = false;
    if (first || !arrived) return null;
    playChime(this.chime);
    return arrived;
  }
}
