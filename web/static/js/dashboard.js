// The clinician's dashboard: today's consultations with their patient's live state from the
// signalling WebSocket (`hello` without `room`): waiting, in the call, connection lost (place
// kept for 30 s), left, finished (docs/protocol.md, "waiting entry"); a chime and a tab title
// when someone arrives.

import './client-errors.js';
import { $ } from './dom.js';
import { bdi, t, timeOf } from './i18n-client.js';
import { SignalClient } from './signal-client.js';
import { Arrivals, waitingDetails } from './waiting.js';

const root = $('dashboard-app');
const arrivals = new Arrivals(root.dataset.chime);

function rowFor(room) {
  return document.querySelector(`.consultation[data-room="${CSS.escape(room)}"]`);
}

// A patient can be admitted while waiting, or while away from the waiting room (place kept).
function admittable(e) {
  return e.state === 'waiting' || (e.state === 'away' && e.place === 'waiting');
}

function describe(e) {
  switch (e.state) {
    case 'in_call': return t('state_in_call', { time: timeOf(e.since) });
    case 'away': return t(e.place === 'in_call' ? 'state_away_in_call' : 'state_away_waiting');
    case 'left': return t('state_left');
    case 'ended': return t('state_ended');
    default: return waitingDetails(e);
  }
}

function addRow(e) {
  // A consultation added after the page loaded (an invitation from a colleague).
  let list = $('consultations');
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
  });
  const arrived = arrivals.update(entries, count);
  const alert = $('waiting-alert');
  if (arrived) {
    alert.textContent = t('is_waiting', { name: arrived.name || t('patient') });
    alert.hidden = false;
  }
  if (!count) alert.hidden = true;
  if (refreshed) $('live').textContent = t('refreshed');
}

const signal = new SignalClient({});
signal.on('welcome', () => { $('live').textContent = t('live_on'); })
  .on('waiting_list', (m) => update(m.entries, m.refresh === true))
  .on('disconnected', () => { $('live').textContent = t('live_off'); });
signal.connect();
