// What the consultation page's modules share: who is looking, the page's state, and the small
// helpers that show a stage, the status line and the call's banner.

import { loadStrings, t } from './i18n-client.js';

export const $ = (id) => document.getElementById(id);
export const app = $('call-app');
loadStrings();
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
};

// How a participant is called on this page: their name, or their role ("Clinician") when the
// server sent no name or the page is discreet. `fallback` is the role of someone unknown.
export function nameOf(p, fallback) {
  const role = p ? p.role : fallback;
  return (!DISCREET && p && p.name) || t(role);
}

export function show(stage) {
  state.stage = stage;
  for (const name of STAGES) $('stage-' + name).hidden = name !== stage;
  const heading = $('stage-' + stage).querySelector('h1');
  if (heading) { heading.tabIndex = -1; heading.focus(); }
}

export function status(text) { $('status').textContent = text || ''; }

export function banner(text, { retryVideo = false } = {}) {
  $('call-banner').hidden = !text;
  $('call-banner-text').textContent = text || '';
  $('retry-video').hidden = !retryVideo;
}
