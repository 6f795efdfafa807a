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

// --- chat (never stored) -------------------------------------------------------------------

$('btn-chat').addEventListener('click', () => {
  const open = $('chat').hidden;
  $('chat').hidden = !open;
  $('btn-chat').setAttribute('aria-expanded', String(open));
  if (open) { unread(0); $('chat-text').focus(); }
});

// The server caps a chat line by its size once JSON-encoded with ASCII escapes
// (CHAT_MAX_RELAY_BYTES in docs/protocol.md), so it always fits one sealed NOTIFY; this
// mirrors it (counting every control character as a \u escape, never less than the server).
const CHAT_MAX_RELAY_BYTES = 4800;

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

$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('chat-text').value.trim();
  if (!text || !state.signal) return;
  if (relayBytes(text) > CHAT_MAX_RELAY_BYTES) {
    status(t('chat_too_long'));
    return;
  }
  if (state.signal.chat(text.slice(0, 2000))) $('chat-text').value = '';
});

function addChatLine(who, text, at) {
  const li = document.createElement('li');
  const b = document.createElement('strong');
  b.append(bdi(who), (at ? ` (${timeOf(at, LANG)})` : '') + ': ');
  li.append(b, bdi(text));
  $('chat-log').append(li);
  li.scrollIntoView({ block: 'nearest' });
}

// A `chat` message from the server (ours too, echoed back).
export function chatIn(msg) {
  const mine = state.me && msg.from === state.me.peer_id;
  addChatLine(mine ? t('chat_you') : nameOf(state.peers.get(msg.from), 'clinician'), msg.text, msg.at);
  if ($('chat').hidden && !mine) unread(state.unread + 1);
}

// Lines come in while the chat is closed: the button says how many, in words ("Chat (2 new)").
function unread(count) {
  state.unread = count;
  $('btn-chat').classList.toggle('unread', count > 0);
  $('chat-unread').hidden = count === 0;
  $('chat-unread').textContent = count === 0 ? ''
    : count === 1 ? t('chat_unread_one') : t('chat_unread', { count });
}
