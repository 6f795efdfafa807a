// The consultation page: pre-call check -> waiting room -> call -> end, for the patient, the
// clinicians and guests. The server (docs/protocol.md) decides who is where; this module shows
// it and keeps one PeerLink per other participant.

import { loadStrings, t, timeOf } from './i18n-client.js';
import { SignalClient } from './signal-client.js';
import { PeerLink } from './negotiation.js';
import { QualityMonitor } from './quality.js';
import { PreCall, openMedia } from './precall.js';
import { ClinicianPanel } from './call-panel.js';

const $ = (id) => document.getElementById(id);
const app = $('call-app');
loadStrings();
const ROLE = app.dataset.role;            // clinician | patient | visitor (maybe a guest)
const ROOM = app.dataset.room;
const LANG = app.dataset.lang;
const STAGES = ['visitor', 'precall', 'waiting', 'call', 'ended'];
// Remembers, for this tab only, that the check was done: a reload goes straight back in.
const PASSED_KEY = `casa.precall.${ROOM}`;
const GUEST_KEY = `casa.guest.${ROOM}`;

const state = {
  signal: null, me: null, iceServers: [], peers: new Map(), links: new Map(),
  stream: null, audioOnly: false, autoAudioOnly: false, muted: false, cameraOff: false,
  screen: null, monitor: null, stage: null, ended: false, panel: null, mediaStates: new Map(),
};

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

function show(stage) {
  state.stage = stage;
  for (const name of STAGES) $('stage-' + name).hidden = name !== stage;
  const heading = $('stage-' + stage).querySelector('h1');
  if (heading) { heading.tabIndex = -1; heading.focus(); }
}

function status(text) { $('status').textContent = text || ''; }

function banner(text, { retryVideo = false } = {}) {
  $('call-banner').hidden = !text;
  $('call-banner-text').textContent = text || '';
  $('retry-video').hidden = !retryVideo;
}

// --- start ---------------------------------------------------------------------------------

const credential = ROLE === 'visitor' ? guestToken() : null;

async function start() {
  if (app.dataset.ended === 'true') { showEnded(); return; }
  if (ROLE === 'visitor' && !credential) { show('visitor'); return; }
  if (sessionStorage.getItem(PASSED_KEY)) {
    status(t('connecting'));
    const media = await openMedia();
    state.stream = media.stream || null;
    state.audioOnly = !state.stream || !state.stream.getVideoTracks().length;
    connect();
    return;
  }
  show('precall');
  const check = new PreCall({ chime: app.dataset.chime, networkCheck: ROLE === 'patient',
    bearer: credential });
  // Listen at once: someone who presses "Continue" before the camera is ready goes on as
  // soon as it is, rather than pressing a button that does nothing.
  const checking = check.run();
  let going = false;
  const go = async (audioOnly) => {
    if (going) return;
    going = true;
    await checking;
    check.stop({ keepStream: true });
    state.stream = check.stream;
    state.audioOnly = audioOnly || !state.stream || !state.stream.getVideoTracks().length;
    sessionStorage.setItem(PASSED_KEY, '1');
    connect();
  };
  $('precall-continue').addEventListener('click', () => go(false));
  $('precall-audio-only').addEventListener('click', () => go(true));
  await checking;
  $('precall-audio-only').hidden = !check.stream || !check.audioOnly;
}

function connect() {
  const nurse = $('nurse-present');
  const signal = new SignalClient({ room: ROOM, credential, lang: LANG,
    nursePresent: nurse ? nurse.checked : null });
  state.signal = signal;
  if (ROLE === 'clinician') state.panel = new ClinicianPanel(signal, app.dataset.admit === 'true', app.dataset.chime);
  signal.on('welcome', welcome).on('admitted', (m) => enterCall(m.peers))
    .on('sent_back', sentBack).on('notice', notice)
    .on('peer_joined', (m) => peerJoined(m.peer)).on('peer_resumed', (m) => peerResumed(m.peer_id))
    .on('peer_away', (m) => peerAway(m.peer_id)).on('peer_left', peerLeft)
    .on('offer', (m) => incoming(m, 'offer')).on('answer', (m) => incoming(m, 'answer'))
    .on('candidate', (m) => { const l = state.links.get(m.from); if (l) l.candidate(m.candidate); })
    .on('media_state', mediaState).on('chat', chatIn).on('ended', () => showEnded())
    .on('error', serverError).on('disconnected', disconnected);
  if (state.panel) {
    signal.on('waiting_list', (m) => state.panel.waitingList(m.entries))
      .on('invited', (m) => state.panel.invited(m));
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

function peersChanged() {
  if (state.panel) state.panel.inCall([...state.peers.values()].filter((p) => p.role === 'patient'));
}

function dropLink(peerId) {
  const old = state.links.get(peerId);
  if (old) { old.close(); state.links.delete(peerId); }
  removeTiles(peerId);
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
  const p = state.peers.get(peerId);
  banner(t('peer_away', { name: p && p.name ? p.name : t(p ? p.role : 'patient') }));
}

function peerLeft(msg) {
  const p = state.peers.get(msg.peer_id);
  dropLink(msg.peer_id);
  state.peers.delete(msg.peer_id);
  banner('');
  if (p && msg.reason !== 'sent_back') status(t('peer_left', { name: p.name || t(p.role) }));
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

// Marks a participant's camera tiles (not a shared screen) with their microphone and camera.
function applyMediaState(peerId) {
  const msg = state.mediaStates.get(peerId);
  if (!msg) return;
  document.querySelectorAll(`.tile[data-peer="${CSS.escape(peerId)}"]:not(.screen)`).forEach((tile) => {
    tile.dataset.audio = String(msg.audio);
    tile.dataset.video = String(msg.video);
  });
}

function chatIn(msg) {
  const p = state.peers.get(msg.from);
  const mine = state.me && msg.from === state.me.peer_id;
  addChatLine(mine ? t('chat_you') : (p && p.name) || t(p ? p.role : 'clinician'), msg.text, msg.at);
  if ($('chat').hidden && !mine) $('btn-chat').classList.add('unread');
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
  if (msg.code === 'server_shutdown') return;
  if (['consultation_ended', 'too_late'].includes(msg.code)) {
    showEnded(t(msg.code));
    return;
  }
  if (msg.code === 'room_not_found' || msg.code === 'unauthenticated') {
    sessionStorage.removeItem(PASSED_KEY);
    show('visitor');
  }
  stopMedia();
  status(t(msg.code, vars) === msg.code ? t('error_generic') : t(msg.code, vars));
}

function disconnected({ willRetry }) {
  if (state.ended || !willRetry) return;
  if (state.stage === 'call') banner(t('reconnecting'));
  else status(t('reconnecting'));
  if (state.panel) state.panel.offline();
}

// --- peer connections ------------------------------------------------------------------------

function isOfferer(peerId) { return !!state.me && state.me.peer_id < peerId; }

function isPolite(peerId) {
  const other = state.peers.get(peerId);
  if (state.me.role === 'patient') return true;
  if (other && other.role === 'patient') return false;
  return !isOfferer(peerId);
}

function link(peerId) {
  const l = new PeerLink({ peerId, polite: isPolite(peerId), offerer: isOfferer(peerId),
    iceServers: state.iceServers, signal: state.signal, onTrack: remoteTrack,
    onState: (s) => { if (s === 'connected') banner(state.autoAudioOnly ? t('audio_only_auto') : '', { retryVideo: state.autoAudioOnly }); } });
  state.links.set(peerId, l);
  l.addLocal(state.stream, { video: !state.audioOnly && !state.autoAudioOnly });
  if (state.screen) l.addScreen(state.screen.getVideoTracks()[0], state.screen);
  return l;
}

function closeLinks() {
  for (const l of state.links.values()) l.close();
  state.links.clear();
  document.querySelectorAll('#remotes .tile').forEach((tile) => tile.remove());
}

// A stream with sound is someone's camera; a stream of video alone is a shared screen.
function remoteTrack(event, l) {
  const stream = event.streams[0] || new MediaStream([event.track]);
  let tile = document.querySelector(`.tile[data-stream="${CSS.escape(stream.id)}"]`);
  if (!tile) {
    tile = document.createElement('div');
    tile.className = 'tile';
    tile.dataset.peer = l.peerId;
    tile.dataset.stream = stream.id;
    const video = document.createElement('video');
    video.autoplay = true;
    video.playsInline = true;
    video.srcObject = stream;
    const name = document.createElement('span');
    name.className = 'name';
    const p = state.peers.get(l.peerId);
    name.textContent = (p && p.name) || t(p ? p.role : 'clinician');
    tile.append(video, name);
    $('remotes').append(tile);
    stream.addEventListener('removetrack', () => { if (!stream.getTracks().length) { tile.remove(); layout(); } });
  }
  const classify = () => {
    const screen = stream.getVideoTracks().length > 0 && stream.getAudioTracks().length === 0
      && !!document.querySelector(`.tile[data-peer="${CSS.escape(l.peerId)}"]:not([data-stream="${CSS.escape(stream.id)}"])`);
    tile.classList.toggle('screen', screen);
    if (screen) { delete tile.dataset.audio; delete tile.dataset.video; }
    applyMediaState(l.peerId);
    layout();
  };
  event.track.addEventListener('ended', () => { if (!stream.getTracks().some((tr) => tr.readyState === 'live')) { tile.remove(); layout(); } });
  classify();
  setTimeout(classify, 500);
}

function layout() {
  const sharing = !!document.querySelector('#remotes .tile.screen');
  $('videos').classList.toggle('sharing', sharing);
  if (sharing && ROLE !== 'clinician') status(t('screen_shared'));
}

function removeTiles(peerId) {
  document.querySelectorAll(`.tile[data-peer="${CSS.escape(peerId)}"]`).forEach((tile) => tile.remove());
  layout();
}

function updateAlone() {
  peersChanged();
  if (state.stage !== 'call') return;
  const others = [...state.peers.values()].filter((p) => !state.me || p.peer_id !== state.me.peer_id);
  if (!others.length) status(t('alone'));
  else if ($('status').textContent === t('alone')) status('');
}

// --- quality and the fall-back to sound only -----------------------------------------------

function startMonitor() {
  if (state.monitor) return;
  state.monitor = new QualityMonitor({
    onLevel: (level, s) => {
      const q = $('quality');
      q.dataset.level = level;
      q.setAttribute('aria-label', t('quality_' + level));
      q.title = t('quality_' + level);
      q.dataset.framesDecoded = String(s.framesDecoded);
      q.dataset.rttMs = String(s.rttMs);
      q.dataset.kbps = s.kbps === null ? '' : String(Math.round(s.kbps));
      q.dataset.loss = s.loss.toFixed(3);
    },
    onPoor: () => { if (!state.audioOnly && !state.cameraOff) audioOnly(true); },
  });
  state.monitor.watch(() => [...state.links.values()].map((l) => l.pc));
}

async function audioOnly(on) {
  state.autoAudioOnly = on;
  app.dataset.audioOnly = String(on);
  banner(on ? t('audio_only_auto') : '', { retryVideo: on });
  const cam = state.stream && state.stream.getVideoTracks()[0];
  for (const l of state.links.values()) await l.setVideoTrack(on ? null : cam || null);
  if (!on && state.monitor) state.monitor.reset();
  sendMediaState();
}

function sendMediaState() {
  if (!state.signal) return;
  const cam = state.stream && state.stream.getVideoTracks()[0];
  state.signal.mediaState(!state.muted, !!cam && !state.cameraOff && !state.autoAudioOnly && !state.audioOnly);
}

// --- controls --------------------------------------------------------------------------------

function toggle(button, pressed, label) {
  button.setAttribute('aria-pressed', String(pressed));
  button.textContent = label;
}

$('btn-mute').addEventListener('click', () => {
  state.muted = !state.muted;
  (state.stream ? state.stream.getAudioTracks() : []).forEach((tr) => { tr.enabled = !state.muted; });
  toggle($('btn-mute'), state.muted, t(state.muted ? 'unmute' : 'mute'));
  sendMediaState();
});

$('btn-camera').addEventListener('click', () => {
  state.cameraOff = !state.cameraOff;
  (state.stream ? state.stream.getVideoTracks() : []).forEach((tr) => { tr.enabled = !state.cameraOff; });
  toggle($('btn-camera'), state.cameraOff, t(state.cameraOff ? 'camera_on' : 'camera_off'));
  sendMediaState();
});

$('retry-video').addEventListener('click', () => audioOnly(false));

$('btn-chat').addEventListener('click', () => {
  const open = $('chat').hidden;
  $('chat').hidden = !open;
  $('btn-chat').setAttribute('aria-expanded', String(open));
  $('btn-chat').classList.remove('unread');
  if (open) $('chat-text').focus();
});

$('chat-form').addEventListener('submit', (event) => {
  event.preventDefault();
  const text = $('chat-text').value.trim();
  if (!text || !state.signal) return;
  if (state.signal.chat(text.slice(0, 2000))) $('chat-text').value = '';
});

function addChatLine(who, text, at) {
  const li = document.createElement('li');
  const b = document.createElement('strong');
  b.textContent = who + (at ? ` (${timeOf(at, LANG)})` : '') + ': ';
  li.append(b, document.createTextNode(text));
  $('chat-log').append(li);
  li.scrollIntoView({ block: 'nearest' });
}

const share = $('btn-share');
if (share) {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) share.hidden = true;
  share.addEventListener('click', async () => {
    if (state.screen) { stopShare(); return; }
    try {
      state.screen = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    } catch { return; }
    const track = state.screen.getVideoTracks()[0];
    track.addEventListener('ended', stopShare);
    for (const l of state.links.values()) l.addScreen(track, state.screen);
    toggle(share, true, t('share_stop'));
  });
}

function stopShare() {
  if (!state.screen) return;
  state.screen.getTracks().forEach((tr) => tr.stop());
  state.screen = null;
  for (const l of state.links.values()) l.removeScreen();
  toggle(share, false, t('share_start'));
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

$('btn-hangup').addEventListener('click', async () => {
  const clinician = ROLE === 'clinician';
  if (!await confirmDialog(t(clinician ? 'confirm_end' : 'confirm_leave'))) return;
  if (clinician) state.signal.end();
  else { state.signal.leave(); showEnded(t('you_left'), { canRejoin: true }); }
});

$('waiting-leave').addEventListener('click', async () => {
  if (!await confirmDialog(t('confirm_leave'))) return;
  state.signal.leave();
  showEnded(t('you_left'), { canRejoin: true });
});

function stopMedia() {
  if (state.monitor) state.monitor.stop();
  state.monitor = null;
  closeLinks();
  if (state.stream) state.stream.getTracks().forEach((tr) => tr.stop());
  if (state.screen) state.screen.getTracks().forEach((tr) => tr.stop());
}

// canRejoin: the person left by themselves (a mistaken tap happens): offer the way back.
function showEnded(reason, { canRejoin = false } = {}) {
  state.ended = true;
  $('rejoin').hidden = !canRejoin;
  if (state.signal) state.signal.close();
  stopMedia();
  if (!canRejoin) sessionStorage.removeItem(PASSED_KEY);
  banner('');
  status('');
  $('ended-reason').textContent = reason || '';
  show('ended');
}

start();
