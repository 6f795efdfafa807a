// The call's stage and what every part of the consultation page shares: who is looking, the
// page's state, the stage/status/banner helpers; one PeerLink per other participant and their
// video tiles (a camera, or a shared screen shown large); our own media in the call (the
// media state the others see, the quality monitor and the fall-back to sound only).

import { $ } from './dom.js';
import { t } from './i18n-client.js';
import { PeerLink } from './negotiation.js';
import { QualityMonitor } from './quality.js';

export const app = $('call-app');
export const ROLE = app.dataset.role;     // clinician | patient | visitor (maybe a guest)
export const ROOM = app.dataset.room;
export const LANG = app.dataset.lang;
// A patient of a sensitive service: someone may see the screen, so no one is named here
// (signalling still sends the clinician's name in peer objects).
export const DISCREET = app.dataset.discreet === 'true';
const STAGES = ['visitor', 'precall', 'waiting', 'call', 'ended'];
// Remembers, for this tab only, that the check was done: a reload goes straight back in.
export const PASSED_KEY = `casa.precall.${ROOM}`;

export const state = {
  signal: null, me: null, iceServers: [], peers: new Map(), links: new Map(),
  stream: null, audioOnly: false, autoAudioOnly: false, muted: false, cameraOff: false,
  screen: null, monitor: null, stage: null, ended: false, panel: null, mediaStates: new Map(),
  precall: null,
  // The clinician's page only: makes the waiting-room panel (set by call-panel.js).
  makePanel: null,
};

// How a participant is called on this page: their name, or their role ("Clinician") when the
// server sent no name or the page is discreet. `fallback` is the role of someone unknown.
export function nameOf(p, fallback) {
  const role = p ? p.role : fallback;
  return (!DISCREET && p && p.name) || t(role);
}

export function show(stage) {
  state.stage = stage;
  // The page's layout follows the stage: in the call it becomes the call (css/call.css), with
  // nothing in the header that would leave or reload it.
  document.body.dataset.stage = stage;
  for (const name of STAGES) $('stage-' + name).hidden = name !== stage;
  const heading = $('stage-' + stage).querySelector('h1');
  if (heading) { heading.tabIndex = -1; heading.focus(); }
}

export function status(text) { $('status').textContent = text || ''; }

// The banner shows a connection's trouble to the eye; the same words go to the connection's
// live region, which is always in the page (the banner is hidden when empty, and a region
// shown already filled is often not read out).
export function banner(text, { retryVideo = false } = {}) {
  $('call-banner').hidden = !text;
  $('call-banner-text').textContent = text || '';
  $('live-connection').textContent = text || '';
  $('retry-video').hidden = !retryVideo;
}

// --- peer links and tiles -------------------------------------------------------------------

export function isOfferer(peerId) { return !!state.me && state.me.peer_id < peerId; }

function isPolite(peerId) {
  const other = state.peers.get(peerId);
  if (state.me.role === 'patient') return true;
  if (other && other.role === 'patient') return false;
  return !isOfferer(peerId);
}

export function link(peerId) {
  const l = new PeerLink({ peerId, polite: isPolite(peerId), offerer: isOfferer(peerId),
    iceServers: state.iceServers, signal: state.signal, onTrack: remoteTrack,
    onState: (s) => {
      if (s !== 'connected') return;
      banner(state.autoAudioOnly ? t('audio_only_auto') : '', { retryVideo: state.autoAudioOnly });
      reportPath(l.pc);
    } });
  state.links.set(peerId, l);
  l.addLocal(state.stream, { video: !state.audioOnly && !state.autoAudioOnly });
  if (state.screen) l.addScreen(state.screen.getVideoTracks()[0], state.screen);
  return l;
}

// --- what the call's media did, for the activity report (docs/protocol.md, media_report) ----

// What this page has found (flags only turn true) and what the server was last told.
const media = { found: null, sent: null };

// Whether a connected pc's selected candidate pair goes through a TURN relay, at either end.
// Chromium names the pair on the transport; the nominated, succeeded pair stands in elsewhere.
export async function relayed(pc) {
  const report = await pc.getStats();
  let pairId = null;
  report.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pairId = s.selectedCandidatePairId; });
  let pair = pairId && report.get(pairId);
  if (!pair) {
    report.forEach((s) => {
      if (!pair && s.type === 'candidate-pair' && (s.selected || s.nominated) && s.state === 'succeeded') pair = s;
    });
  }
  if (!pair) return false;
  const type = (id) => { const c = id && report.get(id); return c ? c.candidateType : null; };
  return type(pair.localCandidateId) === 'relay' || type(pair.remoteCandidateId) === 'relay';
}

// Tells the server once the first connection is up, then only when a flag turns true (a
// later connection through TURN, the automatic fall-back to sound only).
function reportMedia(found) {
  const was = media.found;
  media.found = { relay: found.relay || !!(was && was.relay), soundOnly: found.soundOnly || !!(was && was.soundOnly) };
  const sent = media.sent;
  if (sent && sent.relay === media.found.relay && sent.soundOnly === media.found.soundOnly) return;
  if (state.signal && state.signal.mediaReport(media.found.relay, media.found.soundOnly)) media.sent = media.found;
}

async function reportPath(pc) {
  let relay;
  try { relay = await relayed(pc); } catch { return; }   // closed meanwhile
  reportMedia({ relay, soundOnly: false });
}

export function dropLink(peerId) {
  const old = state.links.get(peerId);
  if (old) { old.close(); state.links.delete(peerId); }
  removeTiles(peerId);
}

export function closeLinks() {
  for (const l of state.links.values()) l.close();
  state.links.clear();
  document.querySelectorAll('#remotes .tile').forEach((tile) => tile.remove());
}

// Marks a participant's camera tiles (not a shared screen) with their microphone and camera.
export function applyMediaState(peerId) {
  const msg = state.mediaStates.get(peerId);
  if (!msg) return;
  document.querySelectorAll(`.tile[data-peer="${CSS.escape(peerId)}"]:not(.screen)`).forEach((tile) => {
    tile.dataset.audio = String(msg.audio);
    tile.dataset.video = String(msg.video);
  });
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
    name.dir = 'auto';
    name.textContent = nameOf(state.peers.get(l.peerId), 'clinician');
    // Whose video this is, for a screen reader (the name on the tile is only drawn over it).
    video.setAttribute('aria-label', t('video_of', { name: name.textContent }));
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

function peersChanged() {
  if (state.panel) state.panel.inCall([...state.peers.values()].filter((p) => p.role === 'patient'));
}

// Tells the clinician's panel who is in the call, and says so when nobody else is.
export function updateAlone() {
  peersChanged();
  if (state.stage !== 'call') return;
  const others = [...state.peers.values()].filter((p) => !state.me || p.peer_id !== state.me.peer_id);
  if (!others.length) status(t('alone'));
  else if ($('status').textContent === t('alone')) status('');
}

// --- our media, quality and the fall-back to sound only ------------------------------------

export function startMonitor() {
  if (state.monitor) return;
  state.monitor = new QualityMonitor({
    onLevel: (level, s) => {
      const q = $('quality');
      q.dataset.level = level;
      // Written only when it changes: the same words every 2 s would be noise to a reader.
      const words = t('quality_' + level);
      if ($('quality-text').textContent !== words) $('quality-text').textContent = words;
      q.dataset.framesDecoded = String(s.framesDecoded);
      q.dataset.rttMs = String(s.rttMs);
      q.dataset.kbps = s.kbps === null ? '' : String(Math.round(s.kbps));
      q.dataset.loss = s.loss.toFixed(3);
    },
    onPoor: () => { if (!state.audioOnly && !state.cameraOff) audioOnly(true); },
  });
  state.monitor.watch(() => [...state.links.values()].map((l) => l.pc));
}

// Takes the camera off every connection (no renegotiation) or puts it back.
export async function audioOnly(on) {
  state.autoAudioOnly = on;
  // Only the automatic fall-back counts: its one caller with true is the quality monitor,
  // which samples connected pcs only, so the connection was reported first.
  if (on) reportMedia({ relay: false, soundOnly: true });
  app.dataset.audioOnly = String(on);
  banner(on ? t('audio_only_auto') : '', { retryVideo: on });
  const cam = state.stream && state.stream.getVideoTracks()[0];
  for (const l of state.links.values()) await l.setVideoTrack(on ? null : cam || null);
  if (!on && state.monitor) state.monitor.reset();
  sendMediaState();
}

export function sendMediaState() {
  if (!state.signal) return;
  const cam = state.stream && state.stream.getVideoTracks()[0];
  state.signal.mediaState(!state.muted, !!cam && !state.cameraOff && !state.autoAudioOnly && !state.audioOnly);
}

export function stopMedia() {
  if (state.monitor) state.monitor.stop();
  state.monitor = null;
  closeLinks();
  if (state.stream) state.stream.getTracks().forEach((tr) => tr.stop());
  if (state.screen) state.screen.getTracks().forEach((tr) => tr.stop());
}
