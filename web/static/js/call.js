// The consultation page: pre-call check -> waiting room -> call -> end, for the patient, the
// clinicians and guests. The server (docs/protocol.md) decides who is where; this module starts
// the page and answers the server's messages. Beside it: call-stage.js (shared state, peer
// links and video tiles, our own media) and call-controls.js (buttons, chat, end page).

import './client-errors.js';
import './read-aloud.js';
import { $, setWord } from './dom.js';
import { t, timeOf } from './i18n-client.js';
import { SignalClient } from './signal-client.js';
import { PreCall, openMedia } from './precall.js';
import { LANG, PASSED_KEY, ROLE, ROOM, app, applyMediaState, banner, closeLinks, dropLink,
  isOfferer, link, nameOf, sendMediaState, show, startMonitor, state, status, stopMedia,
  updateAlone } from './call-stage.js';
import { chatIn, chatOffline, chatRefused, chatSent, showEnded } from './call-controls.js';
import { onQuickExit } from './quick-exit.js';

const GUEST_KEY = `casa.guest.${ROOM}`;
// A kiosk patient's "a nurse is with me", kept for this tab: a reload skips the check (and its
// tick box) but must tell the clinician the same.
const NURSE_KEY = `casa.nurse.${ROOM}`;
// A clinician who passed the device check today on this device: the day alone is kept (no
// name, no room), so that "Admit" on the dashboard lets the patient in at once instead of
// showing the check again and waiting for a second click.
const CHECKED_KEY = 'casa.devicecheck';

function today() {
  const d = new Date();
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

function straightIn() {
  if (sessionStorage.getItem(PASSED_KEY)) return true;
  return ROLE === 'clinician' && app.dataset.admit === 'true'
    && localStorage.getItem(CHECKED_KEY) === today();
}

function guestToken() {
  const match = /(?:^|[#&])guest=([\w-]{10,200})/.exec(location.hash);
  if (match) {
    sessionStorage.setItem(GUEST_KEY, match[1]);
    // The token leaves the address bar (and the history) once read.
    history.replaceState(null, '', location.pathname + location.search);
    return match[1];
  }
  return sessionStorage.getItem(GUEST_KEY);
}

// --- start ---------------------------------------------------------------------------------

const credential = ROLE === 'visitor' ? guestToken() : null;

async function start() {
  if (app.dataset.ended === 'true') { showEnded(); return; }
  if (ROLE === 'visitor' && !credential) { show('visitor'); return; }
  if (straightIn()) {
    sessionStorage.setItem(PASSED_KEY, '1');
    status(t('connecting'));
    const media = await openMedia();
    state.stream = media.stream || null;
    state.audioOnly = !state.stream || !state.stream.getVideoTracks().length;
    connect();
    return;
  }
  show('precall');
  // Guests enter the call directly (the clinician invited them): no waiting room.
  if (credential) setWord($('precall-continue'), t('join_consultation'));
  // Patients and guests (an interpreter, a colleague with a guest link) test the connection
  // too; clinicians check their devices only, to be quick.
  const check = new PreCall({ chime: app.dataset.chime,
    networkCheck: ROLE === 'patient' || !!credential, bearer: credential });
  state.precall = check;
  // Listen at once: someone who presses "Continue" before the camera is ready goes on as
  // soon as it is, rather than pressing a button that does nothing.
  const checking = check.run();
  let going = false;
  const go = async (audioOnly) => {
    if (going) return;
    going = true;
    await checking;
    check.stop({ keepStream: true });
    state.precall = null;
    state.stream = check.stream;
    state.audioOnly = audioOnly || !state.stream || !state.stream.getVideoTracks().length;
    sessionStorage.setItem(PASSED_KEY, '1');
    if (ROLE === 'clinician') localStorage.setItem(CHECKED_KEY, today());
    const nurse = $('nurse-present');
    if (nurse) sessionStorage.setItem(NURSE_KEY, nurse.checked ? '1' : '');
    connect();
  };
  $('precall-continue').addEventListener('click', () => go(false));
  $('precall-audio-only').addEventListener('click', () => go(true));
  await checking;
  $('precall-audio-only').hidden = !check.stream || !check.audioOnly;
}

// A quick exit ends everything before the page goes: the socket says `leave` (the clinician
// sees the patient gone at once, no 30 s grace), then camera and microphone stop.
onQuickExit(() => {
  state.ended = true;
  if (state.signal) { state.signal.leave(); state.signal.close(); }
  stopMedia();
  if (state.precall) state.precall.stop();
  sessionStorage.removeItem(PASSED_KEY);
});

function connect() {
  const nurse = $('nurse-present');
  const signal = new SignalClient({ room: ROOM, credential, lang: LANG,
    nursePresent: nurse ? sessionStorage.getItem(NURSE_KEY) === '1' : null });
  state.signal = signal;
  // The clinician's panel comes in the clinician's script only (call-panel.js): patients never
  // download it.
  if (ROLE === 'clinician' && state.makePanel) {
    state.panel = state.makePanel(signal, app.dataset.admit === 'true', app.dataset.chime);
  }
  signal.on('welcome', welcome).on('admitted', (m) => enterCall(m.peers))
    .on('sent_back', sentBack).on('notice', notice).on('safe_ask', safeAsk)
    .on('peer_joined', (m) => peerJoined(m.peer)).on('peer_resumed', (m) => peerResumed(m.peer_id))
    .on('peer_away', (m) => peerAway(m.peer_id)).on('peer_left', peerLeft)
    .on('offer', (m) => incoming(m, 'offer')).on('answer', (m) => incoming(m, 'answer'))
    .on('candidate', (m) => { const l = state.links.get(m.from); if (l) l.candidate(m.candidate); })
    .on('media_state', mediaState).on('chat', chatIn).on('chat_sent', chatSent)
    .on('ended', () => showEnded())
    .on('error', (m) => { if (!chatRefused(m)) serverError(m); })
    .on('disconnected', disconnected);
  if (state.panel) {
    signal.on('waiting_list', (m) => state.panel.waitingList(m.entries))
      .on('invited', (m) => state.panel.invited(m))
      .on('safety_alert', () => state.panel.safetyAlert());
  }
  status(t('connecting'));
  signal.connect();
}

// --- server messages -----------------------------------------------------------------------

function welcome(msg) {
  state.me = msg;
  state.iceServers = msg.ice_servers || [];
  banner('');
  status('');
  if (msg.state === 'in_call') {
    // Whatever we had belongs to the connection before the drop: start clean.
    closeLinks();
    enterCall(msg.peers);
  } else {
    showWaiting(msg.since);
  }
}

function showWaiting(since) {
  closeLinks();
  show('waiting');
  if (since) $('waiting-since').textContent = t('waiting_since', { time: timeOf(since, LANG) });
}

function sentBack() {
  showWaiting(null);
  showNotice(t('sent_back'));
}

function notice(msg) {
  const key = msg.code === 'few_minutes' && msg.minutes ? 'notice_few_minutes_n' : 'notice_' + msg.code;
  const text = t(key, { minutes: msg.minutes });
  showNotice(text === key ? msg.text : text);
}

// "Is it safe to talk now?": shown without a sound; the answer goes to the clinician only.
function safeAsk() {
  const box = $('safe-ask');
  if (!box) return;
  box.hidden = false;
  $('safe-thanks').hidden = true;
}

for (const b of document.querySelectorAll('#safe-ask button[data-answer]')) {
  b.addEventListener('click', () => {
    if (!state.signal || !state.signal.safeAnswer(b.dataset.answer)) return;
    $('safe-ask').hidden = true;
    $('safe-thanks').hidden = false;
  });
}

function showNotice(text) {
  $('notice').textContent = text;
  $('notice').hidden = !text;
}

function enterCall(peers) {
  if (state.stage !== 'call') {
    show('call');
    $('self-view').srcObject = state.stream;
    startMonitor();
    sendMediaState();
  }
  status(t('admitted'));
  for (const p of peers || []) {
    state.peers.set(p.peer_id, p);
    if (p.connected !== false && isOfferer(p.peer_id)) link(p.peer_id);
  }
  updateAlone();
}

function peerJoined(peer) {
  state.peers.set(peer.peer_id, peer);
  dropLink(peer.peer_id);
  if (isOfferer(peer.peer_id)) link(peer.peer_id);
  updateAlone();
}

function peerResumed(peerId) {
  // The other side's page may have reloaded: a fresh connection is the safe way back.
  dropLink(peerId);
  if (isOfferer(peerId)) link(peerId);
  banner('');
}

function peerAway(peerId) {
  banner(t('peer_away', { name: nameOf(state.peers.get(peerId), 'patient') }));
}

function peerLeft(msg) {
  const p = state.peers.get(msg.peer_id);
  dropLink(msg.peer_id);
  state.peers.delete(msg.peer_id);
  banner('');
  if (p && msg.reason !== 'sent_back') status(t('peer_left', { name: nameOf(p) }));
  updateAlone();
}

function incoming(msg, type) {
  let l = state.links.get(msg.from);
  if (type === 'offer' && l && l.isFromNewPeer(msg.sdp)) {
    dropLink(msg.from);
    l = null;
  }
  if (!l && type === 'offer') l = link(msg.from);
  if (l) l.description(type, msg.sdp);
}

function mediaState(msg) {
  state.mediaStates.set(msg.from, msg);
  applyMediaState(msg.from);
}

function serverError(msg) {
  if (!msg.fatal) {
    status(t(msg.code) === msg.code ? t('error_generic') : t(msg.code));
    return;
  }
  const vars = {};
  if (msg.code === 'too_early' && msg.details && msg.details.opens_at) {
    vars.time = timeOf(msg.details.opens_at, LANG);
  }
  if (['server_shutdown', 'try_again', 'too_slow', 'no_answer'].includes(msg.code)) return;
  if (['consultation_ended', 'too_late'].includes(msg.code)) {
    showEnded(t(msg.code));
    return;
  }
  if (msg.code === 'room_not_found' || msg.code === 'unauthenticated' || msg.code === 'guest_revoked') {
    sessionStorage.removeItem(PASSED_KEY);
    show('visitor');
  }
  stopMedia();
  status(t(msg.code, vars) === msg.code ? t('error_generic') : t(msg.code, vars));
}

function disconnected({ willRetry }) {
  chatOffline();
  if (state.ended || !willRetry) return;
  if (state.stage === 'call') banner(t('reconnecting'));
  else status(t('reconnecting'));
  if (state.panel) state.panel.offline();
}

start();
