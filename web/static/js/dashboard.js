// The clinician's dashboard: today's consultations with their patient's live state from the
// signalling WebSocket (`hello` without `room`): waiting, in the call, connection lost (place
// kept for 30 s), left, finished (docs/protocol.md, "waiting entry"); a chime and a tab title
// when someone arrives.

import { bdi, loadStrings, t, timeOf } from './i18n-client.js';
import { SignalClient } from './signal-client.js';

loadStrings();
// This page's own strings (the dashboard's states), translated on the server like the others.
const own = JSON.parse(document.getElementById('dashboard-strings')?.textContent || '{}');
function say(key, vars = {}) {
  const text = own[key] ?? key;
  return text.replace(/%\((\w+)\)s/g, (whole, name) => (name in vars ? String(vars[name]) : whole));
}
const root = document.getElementById('dashboard-app');
const baseTitle = document.title;
const seen = new Set();
let first = true;

// "ro" -> "rumeno" on an Italian page: the browser knows the names (CLDR), as Babel does for
// the server-rendered rows.
function languageName(code) {
  try {
    return new Intl.DisplayNames([document.documentElement.lang || 'it'], { type: 'language' })
      .of(code) || code;
  } catch {
    return code;
  }
}

function rowFor(room) {
  return document.querySelector(`.consultation[data-room="${CSS.escape(room)}"]`);
}

// A patient can be admitted while waiting, or while away from the waiting room (place kept).
function admittable(e) {
  return e.state === 'waiting' || (e.state === 'away' && e.place === 'waiting');
}

function describe(e) {
  switch (e.state) {
    case 'in_call': return say('state_in_call', { time: timeOf(e.since) });
    case 'away': return say(e.place === 'in_call' ? 'state_away_in_call' : 'state_away_waiting');
    case 'left': return say('state_left');
    case 'ended': return say('state_ended');
    default: {
      const parts = [t('waiting_status', { time: timeOf(e.since) }),
        t(e.from === 'kiosk' ? 'from_kiosk' : 'from_home')];
      if (e.nurse_present) parts.push(t('nurse_present'));
      if (e.language) parts.push(languageName(e.language));
      return parts.join(' · ');
    }
  }
}

function addRow(e) {
  // A consultation added after the page loaded (an invitation from a colleague).
  let list = document.getElementById('consultations');
  if (!list) {
    list = document.createElement('ul');
    list.id = 'consultations';
    list.className = 'consultations';
    root.querySelector('h1').after(list);
  }
  const li = document.createElement('li');
  li.className = 'card consultation';
  li.dataset.room = e.room;
  const who = document.createElement('div');
  who.className = 'who';
  who.append(`${timeOf(e.starts_at)} · `, bdi(e.name));
  const statusEl = document.createElement('div');
  statusEl.className = 'live-status';
  statusEl.dataset.status = '';
  const actions = document.createElement('div');
  actions.className = 'row-actions';
  const admit = document.createElement('a');
  admit.className = 'button primary admit';
  admit.href = `/consultation/${encodeURIComponent(e.room)}?admit=1`;
  admit.textContent = t('admit');
  const open = document.createElement('a');
  open.className = 'button open';
  open.href = `/consultation/${encodeURIComponent(e.room)}`;
  open.textContent = t('open_consultation');
  actions.append(admit, open);
  li.append(who, statusEl, actions);
  list.append(li);
  return li;
}

function update(entries, refreshed) {
  const byRoom = new Map();
  for (const e of entries) byRoom.set(e.room, e);
  for (const [room, e] of byRoom) if (!rowFor(room)) addRow(e);
  let arrived = null;
  let count = 0;
  document.querySelectorAll('.consultation').forEach((row) => {
    const e = byRoom.get(row.dataset.room);
    if (!e) return;   // nobody has arrived yet: the page's own text stands
    const statusEl = row.querySelector('[data-status]');
    const admit = row.querySelector('.admit');
    row.dataset.state = e.state;
    statusEl.textContent = describe(e);
    admit.hidden = !admittable(e);
    if (admittable(e)) count += 1;
    if (e.state === 'waiting' && e.peer_id && !seen.has(e.peer_id)) arrived = e;
    if (e.peer_id) {
      if (e.state === 'waiting') seen.add(e.peer_id);
      else if (e.state === 'left' || e.state === 'ended') seen.delete(e.peer_id);
    }
  });
  document.title = count ? `${t('title_waiting', { count })} ${baseTitle}` : baseTitle;
  const alert = document.getElementById('waiting-alert');
  if (arrived && !first) {
    alert.textContent = t('is_waiting', { name: arrived.name || t('patient') });
    alert.hidden = false;
    new Audio(root.dataset.chime).play().catch(() => {});
  }
  if (!count) alert.hidden = true;
  if (refreshed) document.getElementById('live').textContent = say('refreshed');
  first = false;
}

const signal = new SignalClient({});
signal.on('welcome', () => { document.getElementById('live').textContent = t('live_on'); })
  .on('waiting_list', (m) => update(m.entries, m.refresh === true))
  .on('disconnected', () => { document.getElementById('live').textContent = t('live_off'); });
signal.connect();
