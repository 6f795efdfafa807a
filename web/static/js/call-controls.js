// The call's controls (mute, camera, try video again, screen share, hang up with confirmation,
// leaving the waiting room) and the end page they lead to. The chat is chat.js's.

import { reportError } from './client-errors.js';
import { $, setWord } from './dom.js';
import { t } from './i18n-client.js';
import { DISCREET, PASSED_KEY, ROLE, audioOnly, banner, sendMediaState, show, state, status,
  stopMedia } from './call-stage.js';

function toggle(button, pressed, label) {
  button.setAttribute('aria-pressed', String(pressed));
  setWord(button, label);
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
