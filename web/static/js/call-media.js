// Our own camera and microphone in the call: the media state the others see, the quality
// monitor and the fall-back to sound only, and stopping everything at the end.

import { t } from './i18n-client.js';
import { QualityMonitor } from './quality.js';
import { $, app, banner, state } from './call-state.js';
import { closeLinks } from './call-stage.js';

export function startMonitor() {
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

// Takes the camera off every connection (no renegotiation) or puts it back.
export async function audioOnly(on) {
  state.autoAudioOnly = on;
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
