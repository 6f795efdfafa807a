// The call's controls (mute, camera, try video again, screen share, chat, hang up with
// confirmation, leaving the waiting room) and the end page they lead to.

import { reportError } from './client-errors.js';
import { $ } from './dom.js';
import { bdi, t, timeOf } from './i18n-client.js';
import { DISCREET, LANG, PASSED_KEY, ROLE, audioOnly, banner, nameOf, sendMediaState, show,
  state, status, stopMedia } from './call-stage.js';

// A toggle keeps its name ("Mute") and says whether it is on with aria-pressed alone (its
// icon is struck through, css): a name that flips with the state reads as the opposite action.
function toggle(button, pressed) {
  button.setAttribute('aria-pressed', String(pressed));
}

$('btn-mute').addEventListener('click', () => {
  state.muted = !state.muted;
  (state.stream ? state.stream.getAudioTracks() : []).forEach((tr) => { tr.enabled = !state.muted; });
  toggle($('btn-mute'), state.muted);
  sendMediaState();
});

$('btn-camera').addEventListener('click', () => {
  state.cameraOff = !state.cameraOff;
  (state.stream ? state.stream.getVideoTracks() : []).forEach((tr) => { tr.enabled = !state.cameraOff; });
  toggle($('btn-camera'), state.cameraOff);
  sendMediaState();
});

$('retry-video').addEventListener('click', () => audioOnly(false));

const share = $('btn-share');
if (share) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) share.hidden = true;
  share.addEventListener('click', async () => {
    if (state.screen) { stopShare(); return; }
    try {
      state.screen = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch (err) {
      // Refused by the person (or by the browser's policy): nothing to share, nothing wrong.
      if (err.name !== 'NotAllowedError') reportError(err);
      return;
    }
    const track = state.screen.getVideoTracks()[0];
    track.addEventListener('ended', stopShare);
    for (const l of state.links.values()) l.addScreen(track, state.screen);
    toggle(share, true);
  });
}

function stopShare() {
  if (!state.screen) return;
  state.screen.getTracks().forEach((tr) => tr.stop());
  state.screen = null;
  for (const l of state.links.values()) l.removeScreen();
  toggle(share, false);
}

function confirmDialog(text) {
  const dialog = $('confirm');
  $('confirm-text').textContent = text;
  return new Promise((resolve) => {
    const done = (answer) => {
      $('confirm-yes').onclick = $('confirm-no').onclick = dialog.oncancel = null;
      dialog.close();
      resolve(answer);
    };
    $('confirm-yes').onclick = () => done(true);
    $('confirm-no').onclick = () => done(false);
    dialog.oncancel = () => done(false);
    dialog.showModal();
    $('confirm-no').focus();
  });
}

// A patient of a sensitive consultation leaves at a tap: no question that keeps them on a
// page someone may be looking at, and no "Go back in" afterwards (docs/architecture.md).
$('btn-hangup').addEventListener('click', async () => {
  const clinician = ROLE === 'clinician';
  if (!DISCREET && !await confirmDialog(t(clinician ? 'confirm_end' : 'confirm_leave'))) return;
  if (clinician) state.signal.end();
  else { state.signal.leave(); showEnded(t('you_left'), { canRejoin: !DISCREET }); }
});

$('waiting-leave').addEventListener('click', async () => {
  if (!DISCREET && !await confirmDialog(t('confirm_leave'))) return;
  state.signal.leave();
  showEnded(t('you_left'), { canRejoin: !DISCREET });
});

// canRejoin: the person left by themselves (a mistaken tap happens): offer the way back.
export function showEnded(reason, { canRejoin = false } = {}) {
  state.ended = true;
  if ($('rejoin')) $('rejoin').hidden = !canRejoin;
  if (state.signal) state.signal.close();
  stopMedia();
  if (!canRejoin) sessionStorage.removeItem(PASSED_KEY);
  banner('');
  status('');
  $('ended-reason').textContent = reason || '';
  show('ended');
}

// --- chat (never stored; docs/protocol.md, "Chat") -----------------------------------------
// Our own line is shown at once as "Sending...", then "Sent" when the server answers
// `chat_sent`, or "Not sent" with a way to send it again; the server never echoes it. Lines are
// shown once per sender and id, so a retry whose first attempt did arrive is not shown twice.
// While the chat is closed, a line from someone else is announced in the chat's live region.

// No answer within this time: the line is marked not sent (the socket may be dead without
// having closed yet). An answer arriving later still marks it sent.
const ANSWER_MS = 10_000;

// The server caps a chat line by its size once JSON-encoded with ASCII escapes
// (CHAT_MAX_RELAY_BYTES in docs/protocol.md), so it always fits one sealed NOTIFY; this
// mirrors it (counting every control character as a \u escape, never less than the server).
const CHAT_MAX_RELAY_BYTES = 4800;

const mine = new Map();      // our lines by id: { li, text, timer }
const shown = new Set();     // `${from} ${id}` of the others' lines already on screen
let unread = 0;

function relayBytes(text) {
  let n = 2;
  for (const ch of text) {
    const c = ch.codePointAt(0);
    if (c > 0xffff) n += 12;
    else if (c > 0x7e || c < 0x20) n += 6;
    else if (ch === '"' || ch === '\\') n += 2;
    else n += 1;
  }
  return n;
}

// Random, not counted: ids must differ from those sent before a reload (docs/protocol.md).
function newId() {
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  return 'm' + [...bytes].map((b) => b.toString(16).padStart(2, '0')).join('');
}

// The same words twice in a row are no change a screen reader would read: emptied first,
// then said again a moment later.
const REPEAT_MS = 100;

let repeat = null;

function announce(text) {
  const region = $('live-chat');
  clearTimeout(repeat);
  if (text && region.textContent === text) {
    region.textContent = '';
    repeat = setTimeout(() => { region.textContent = text; }, REPEAT_MS);
  } else {
    region.textContent = text;
  }
}

function heading(li, who, at) {
  const b = document.createElement('strong');
  b.append(bdi(who), (at ? ` (${timeOf(at, LANG)})` : '') + ': ');
  li.querySelector('strong')?.remove();
  li.prepend(b);
}

function addLine(who, text, at) {
  const li = document.createElement('li');
  li.append(bdi(text));
  heading(li, who, at);
  $('chat-log').append(li);
  li.scrollIntoView({ block: 'nearest' });
  return li;
}

// --- our own lines -------------------------------------------------------------------------

function mark(id, how) {
  const line = mine.get(id);
  if (!line) return;
  clearTimeout(line.timer);
  const { li } = line;
  li.dataset.state = how;
  li.querySelector('.chat-state').textContent = t({ sending: 'chat_sending', sent: 'chat_sent',
    failed: 'chat_not_sent' }[how]);
  li.querySelector('.chat-retry').hidden = how !== 'failed';
  if (how === 'sending') line.timer = setTimeout(() => failed(id), ANSWER_MS);
}

function failed(id) {
  const line = mine.get(id);
  if (!line || line.li.dataset.state !== 'sending') return;
  mark(id, 'failed');
  announce(t('chat_failed'));
}

function send(id) {
  const line = mine.get(id);
  if (state.signal && state.signal.chat(line.text, id)) mark(id, 'sending');
  else { mark(id, 'failed'); announce(t('chat_failed')); }
}

$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('chat-text').value.trim();
  if (!text || !state.signal) return;
  if (relayBytes(text) > CHAT_MAX_RELAY_BYTES) {
    status(t('chat_too_long'));
    return;
  }
  const id = newId();
  const li = addLine(t('chat_you'), text.slice(0, 2000), null);
  li.dataset.mine = 'true';
  const word = document.createElement('span');
  word.className = 'chat-state';
  const retry = document.createElement('button');
  retry.type = 'button';
  retry.className = 'chat-retry';
  retry.textContent = t('chat_retry');
  retry.addEventListener('click', () => send(id));
  li.append(' ', word, ' ', retry);
  mine.set(id, { li, text: text.slice(0, 2000), timer: null });
  $('chat-text').value = '';
  send(id);
});

// The server's answer to one of our lines: relayed to `delivered` others (none: not sent).
export function chatSent(msg) {
  const line = mine.get(msg.id);
  if (!line) return;
  if (msg.delivered > 0) {
    mark(msg.id, 'sent');
    heading(line.li, t('chat_you'), msg.at);
  } else if (line.li.dataset.state === 'sending') {
    mark(msg.id, 'failed');
    announce(t('chat_failed'));
  }
}

// A refusal naming one of our lines (not in the call, too long for the server): not sent.
// True when it was about a line of ours, so the page shows no other error for it.
export function chatRefused(msg) {
  if (msg.fatal || !mine.has(msg.id)) return false;
  mark(msg.id, 'failed');
  announce(t('chat_failed'));
  return true;
}

// The socket closed: answers to lines still sending belonged to it and will not come.
export function chatOffline() {
  for (const id of mine.keys()) failed(id);
}

// --- the others' lines ---------------------------------------------------------------------

// Lines come in while the chat is closed: the button says how many, in words ("Chat (2 new)").
function setUnread(count) {
  unread = count;
  $('btn-chat').classList.toggle('unread', count > 0);
  $('chat-unread').hidden = count === 0;
  $('chat-unread').textContent = count === 0 ? ''
    : count === 1 ? t('chat_unread_one') : t('chat_unread', { count });
}

function announcement(p) {
  if (unread > 1) return t('chat_new_count', { count: unread });
  const role = p ? p.role : 'clinician';
  // On a discreet page, or for someone the server sent no name for: the role only.
  if (DISCREET || !p || !p.name) return t('chat_new_' + role);
  return t('chat_new_from', { name: nameOf(p, role) });
}

export function chatIn(msg) {
  if (state.me && msg.from === state.me.peer_id) return;   // never ours: the server does not echo
  if (msg.id) {
    const key = `${msg.from} ${msg.id}`;
    if (shown.has(key)) return;
    shown.add(key);
  }
  const p = state.peers.get(msg.from);
  addLine(nameOf(p, 'clinician'), msg.text, msg.at);
  if (!$('chat').hidden) return;
  setUnread(unread + 1);
  announce(announcement(p));
}

$('btn-chat').addEventListener('click', () => {
  const open = $('chat').hidden;
  $('chat').hidden = !open;
  $('btn-chat').setAttribute('aria-expanded', String(open));
  setUnread(0);
  // Emptied, so the next announcement is a change the screen reader reads even if its
  // words are the same as the last one's.
  announce('');
  if (open) $('chat-text').focus();
});
