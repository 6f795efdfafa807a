// The clinician's dashboard: today's consultations with their live waiting state from the
// signalling WebSocket (`hello` without `room`), a chime and a tab title when someone arrives.

import { loadStrings, t, timeOf } from './i18n-client.js';
import { SignalClient } from './signal-client.js';

loadStrings();
const root = document.getElementById('dashboard-app');
const baseTitle = document.title;
const seen = new Set();
let first = true;

function rowFor(room) {
  return document.querySelector(`.consultation[data-room="${CSS.escape(room)}"]`);
}

function describe(e) {
  const parts = [t('waiting_status', { time: timeOf(e.since) }),
    t(e.from === 'kiosk' ? 'from_kiosk' : 'from_home')];
  if (e.nurse_present) parts.push(t('nurse_present'));
  if (e.language) parts.push(e.language);
  return parts.join(' · ');
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
  who.textContent = `${timeOf(e.starts_at)} · ${e.name}`;
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

function update(entries) {
  const byRoom = new Map();
  for (const e of entries) {
    if (!byRoom.has(e.room)) byRoom.set(e.room, []);
    byRoom.get(e.room).push(e);
  }
  for (const room of byRoom.keys()) if (!rowFor(room)) addRow(byRoom.get(room)[0]);
  let arrived = null;
  document.querySelectorAll('.consultation').forEach((row) => {
    const waiting = byRoom.get(row.dataset.room) || [];
    const statusEl = row.querySelector('[data-status]');
    const admit = row.querySelector('.admit');
    if (waiting.length) {
      row.dataset.state = 'waiting';
      statusEl.textContent = waiting.map(describe).join('; ');
      admit.hidden = false;
      for (const e of waiting) {
        if (!seen.has(e.peer_id)) { seen.add(e.peer_id); arrived = e; }
      }
    } else {
      if (row.dataset.state === 'waiting') {
        // Admitted, or gone: the waiting list cannot tell which, so say only what is sure.
        row.dataset.state = 'seen';
        statusEl.textContent = t('no_longer_waiting');
      }
      admit.hidden = true;
    }
  });
  const count = entries.length;
  document.title = count ? `${t('title_waiting', { count })} ${baseTitle}` : baseTitle;
  const alert = document.getElementById('waiting-alert');
  if (arrived && !first) {
    alert.textContent = t('is_waiting', { name: arrived.name || t('patient') });
    alert.hidden = false;
    new Audio(root.dataset.chime).play().catch(() => {});
  }
  if (!count) alert.hidden = true;
  first = false;
}

const signal = new SignalClient({});
signal.on('welcome', () => { document.getElementById('live').textContent = t('live_on'); })
  .on('waiting_list', (m) => update(m.entries))
  .on('disconnected', () => { document.getElementById('live').textContent = t('live_off'); });
signal.connect();
