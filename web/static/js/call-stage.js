// The call's stage: one PeerLink per other participant, and their video tiles (a camera, or a
// shared screen shown large).

import { t } from './i18n-client.js';
import { PeerLink } from './negotiation.js';
import { $, ROLE, banner, nameOf, state, status } from './call-state.js';

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
    onState: (s) => { if (s === 'connected') banner(state.autoAudioOnly ? t('audio_only_auto') : '', { retryVideo: state.autoAudioOnly }); } });
  state.links.set(peerId, l);
  l.addLocal(state.stream, { video: !state.audioOnly && !state.autoAudioOnly });
  if (state.screen) l.addScreen(state.screen.getVideoTracks()[0], state.screen);
  return l;
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
    name.textContent = nameOf(state.peers.get(l.peerId), 'clinician');
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
