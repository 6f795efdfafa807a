// The pre-call check: camera preview, microphone level, a speaker test sound and a real
// connection test against the server's echo peer (docs/protocol.md, "Pre-call check"), with
// the call's STUN/TURN servers and, where there is a relay, a relay-only test as well.
// Every result is a sentence that says what to do; nothing here blocks the patient.

import { reportError } from './client-errors.js';
import { $, csrfToken } from './dom.js';
import { t } from './i18n-client.js';
import { sample } from './quality.js';

// A peak above this (0..1) means the microphone hears something: a voice at arm's length
// peaks well above it, the hiss of a silent microphone stays well below.
const MIC_HEARD = 0.03;
const METER_MS = 50;
const ECHO_CONNECT_MS = 10000;
const ECHO_MEASURE_MS = 2500;
const GATHER_MS = 3000;
// Round trips above this make video shaky.
const SLOW_RTT_MS = 400;

// A result sentence; the first result of a check also colours the check's dot (the relay
// test's line is a second opinion and leaves the dot to the connection test).
function setResult(id, state, text) {
  const el = $(id);
  el.textContent = text;
  el.dataset.state = state;
  const check = el.closest('.check');
  if (check && !el.classList.contains('secondary')) check.dataset.state = state;
}

// getUserMedia with graceful steps down: camera + microphone, then microphone only.
export async function openMedia() {
  if (!navigator.mediaDevices || !window.RTCPeerConnection) return { error: 'unsupported' };
  try {
    return { stream: await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: { ideal: 640 }, height: { ideal: 480 } } }) };
  } catch (err) {
    // Step down to sound only: a camera that is refused, busy or absent must not keep the
    // patient out of the consultation.
    const cameraError = { NotAllowedError: 'denied', SecurityError: 'denied',
      NotReadableError: 'busy' }[err.name] || 'missing';
    try {
      const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      return { stream, cameraError };
    } catch (err2) {
      return { error: err2.name === 'NotAllowedError' || err2.name === 'SecurityError' ? 'denied' : 'missing' };
    }
  }
}

export class PreCall {
  constructor({ chime, networkCheck = true, bearer = null }) {
    this.chime = chime;
    this.networkCheck = networkCheck;
    this.bearer = bearer;
    this.stream = null;
    this.audioOnly = false;
    this.network = null;
    this.echoPcs = new Set();
    this.generation = 0;
    const network = $('check-network');
    if (network) network.hidden = !networkCheck;
    $('speaker-play').addEventListener('click', () => this.playSound());
    $('speaker-yes').addEventListener('click', () => this.heard(true));
    $('speaker-no').addEventListener('click', () => this.heard(false));
    $('precall-retry').addEventListener('click', () => this.run());
  }

  async run() {
    this.stop();
    const media = await openMedia();
    $('camera-help').hidden = true;
    if (media.error === 'unsupported') {
      setResult('camera-result', 'fail', t('unsupported'));
      return this;
    }
    if (media.error === 'denied') {
      setResult('camera-result', 'fail', t('camera_denied'));
      setResult('mic-result', 'fail', t('mic_denied'));
      $('camera-help').hidden = false;
      return this;
    }
    if (media.error) {
      setResult('camera-result', 'warn', t('camera_missing'));
      setResult('mic-result', 'fail', t('mic_missing'));
      return this;
    }
    this.stream = media.stream;
    this.audioOnly = !!media.cameraError;
    $('preview').srcObject = this.stream;
    if (media.cameraError) {
      const key = { busy: 'camera_busy', denied: 'camera_denied' }[media.cameraError] || 'camera_missing';
      setResult('camera-result', 'warn', t(key));
      $('camera-help').hidden = media.cameraError !== 'denied';
    } else {
      setResult('camera-result', 'ok', t('camera_ok'));
    }
    this.meter();
    if (this.networkCheck) this.network = this.checkNetwork();
    return this;
  }

  meter() {
    const track = this.stream.getAudioTracks()[0];
    if (!track) { setResult('mic-result', 'fail', t('mic_missing')); return; }
    setResult('mic-result', 'warn', t('mic_silent'));
    const ctx = new AudioContext();
    this.audioCtx = ctx;
    const source = ctx.createMediaStreamSource(new MediaStream([track]));
    const analyser = ctx.createAnalyser();
    analyser.fftSize = 2048;
    source.connect(analyser);
    const data = new Float32Array(analyser.fftSize);
    let heard = false;
    this.meterTimer = setInterval(() => {
      analyser.getFloatTimeDomainData(data);
      let peak = 0;
      for (const v of data) peak = Math.max(peak, Math.abs(v));
      $('mic-level').value = Math.min(1, peak * 2);
      if (!heard && peak > MIC_HEARD) {
        heard = true;
        setResult('mic-result', 'ok', t('mic_ok'));
      }
    }, METER_MS);
    // Browsers may start an AudioContext suspended until the person taps the page (autoplay
    // rules): then ask for a tap, and wake the meter with the first one.
    if (ctx.state === 'suspended') {
      setResult('mic-result', 'warn', t('mic_tap'));
      const wake = () => ctx.resume().catch(reportError);
      document.addEventListener('pointerdown', wake, { once: true });
      document.addEventListener('keydown', wake, { once: true });
    }
  }

  playSound() {
    $('speaker-question-text').textContent = t('speaker_question');
    $('speaker-question').hidden = false;
    new Audio(this.chime).play().catch((err) => {
      // The sound could not play at all (no output device, a format the browser lacks): the
      // same advice as for a sound not heard, without waiting for the answer.
      $('speaker-question').hidden = true;
      setResult('speaker-result', 'warn', t('speaker_bad'));
      if (err.name !== 'NotAllowedError') reportError(err);
    });
  }

  heard(yes) {
    $('speaker-question').hidden = true;
    setResult('speaker-result', yes ? 'ok' : 'warn', t(yes ? 'speaker_ok' : 'speaker_bad'));
  }

  // The connection test: our camera and microphone to the server's echo peer and back, with
  // the call's own ICE servers; then, when the server has a TURN relay and the first test
  // did not already go through it, a second, relay-only test with the microphone alone, so
  // the patient knows whether the relay (the way out of a strict network) works from here.
  async checkNetwork() {
    const generation = this.generation;
    // A check that was stopped (Continue, Check again) must not write over the next one.
    const say = (...args) => { if (generation === this.generation) setResult(...args); };
    say('net-result', 'pending', t('net_checking'));
    $('relay-result').hidden = true;
    const iceServers = await this.iceServers();
    let direct = null;
    try {
      direct = await this.echo(this.stream.getTracks(), { iceServers });
      const { local, report } = direct;
      const rtt = Math.round(report.rtt_ms ?? local.rttMs ?? 0);
      const slow = rtt > SLOW_RTT_MS || (report.packet_loss ?? 0) > 0.05;
      say('net-result', slow ? 'warn' : 'ok', t(slow ? 'net_fair' : 'net_good', { rtt }));
      $('net-result').dataset.framesDecoded = String(local.framesDecoded);
      $('net-result').dataset.candidate = report.candidate_type || '';
    } catch {
      say('net-result', 'fail', t('net_failed'));
    }
    // Moved on: no second test behind the patient's back.
    if (generation !== this.generation) return { ok: !!direct };
    if (!iceServers.some((s) => s.username)) return { ok: !!direct, report: direct && direct.report };
    const relay = $('relay-result');
    relay.hidden = false;
    if (direct && direct.report.candidate_type === 'relay') {
      say('relay-result', 'ok', t('net_via_relay'));
      relay.dataset.candidate = 'relay';
      return { ok: true, relay: true, report: direct.report };
    }
    say('relay-result', 'pending', t('relay_checking'));
    try {
      const audio = this.stream.getAudioTracks();
      const { local, report } = await this.echo(audio.length ? audio : this.stream.getTracks(),
        { iceServers, iceTransportPolicy: 'relay' });
      relay.dataset.candidate = report.candidate_type || '';
      const ok = report.candidate_type === 'relay' && local.received > 0;
      say('relay-result', ok ? 'ok' : 'fail', t(ok ? 'relay_ok' : 'relay_failed'));
      return { ok: !!direct || ok, relay: ok, report: direct && direct.report };
    } catch (err) {
      // A busy echo server says nothing about the network: not a failure of the patient's.
      const busy = err && err.busy;
      say('relay-result', busy ? 'warn' : 'fail', t(busy ? 'relay_untested' : 'relay_failed'));
      return { ok: !!direct, relay: false, report: direct && direct.report };
    }
  }

  authHeaders() {
    return this.bearer ? { Authorization: 'Bearer ' + this.bearer } : {};
  }

  // The same short-lived STUN/TURN list the call gets; none (host candidates only) if the
  // server cannot be asked.
  async iceServers() {
    try {
      const resp = await fetch('/api/v1/precall/ice-servers',
        { headers: this.authHeaders(), credentials: 'same-origin' });
      if (resp.ok) return (await resp.json()).ice_servers || [];
    } catch { /* no ICE servers: the test still tries a direct path */ }
    return [];
  }

  // One round trip through the echo peer: sends `tracks`, waits until the connection is up
  // and media has flowed for a moment; returns what we received and what the server saw.
  async echo(tracks, config) {
    const pc = new RTCPeerConnection(config);
    this.echoPcs.add(pc);
    try {
      tracks.forEach((track) => pc.addTrack(track, this.stream));
      if (!tracks.some((tr) => tr.kind === 'video') && !config.iceTransportPolicy) {
        pc.addTransceiver('video', { direction: 'recvonly' });
      }
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc, GATHER_MS);
      // Relay only and no relay candidate: the relay refused us or cannot be reached. No need
      // to take an echo peer and wait for a connection that cannot come.
      if (config.iceTransportPolicy === 'relay' && !/ typ relay /.test(pc.localDescription.sdp)) {
        throw new Error('no relay candidate');
      }
      const headers = { 'Content-Type': 'application/json', 'X-CSRF-Token': csrfToken(),
        ...this.authHeaders() };
      const resp = await fetch('/api/v1/precall/offer', {
        method: 'POST', headers, credentials: 'same-origin',
        body: JSON.stringify({ sdp: pc.localDescription.sdp, type: 'offer' }),
      });
      if (!resp.ok) throw Object.assign(new Error('offer ' + resp.status), { busy: resp.status === 429 });
      const answer = await resp.json();
      await pc.setRemoteDescription({ type: 'answer', sdp: answer.sdp });
      await connected(pc, ECHO_CONNECT_MS);
      await new Promise((r) => setTimeout(r, ECHO_MEASURE_MS));
      const local = await sample(pc, null);
      let report = {};
      const rep = await fetch(`/api/v1/precall/${encodeURIComponent(answer.id)}/report`,
        { headers: this.authHeaders(), credentials: 'same-origin' });
      if (rep.ok) report = await rep.json();
      return { local, report };
    } finally {
      pc.close();
      this.echoPcs.delete(pc);
    }
  }

  // Stops the meter and the echo test; the camera stream is handed on to the call.
  stop({ keepStream = false } = {}) {
    this.generation += 1;
    clearInterval(this.meterTimer);
    if (this.audioCtx) this.audioCtx.close().catch(reportError);
    this.audioCtx = null;
    for (const pc of this.echoPcs) pc.close();
    this.echoPcs.clear();
    if (!keepStream && this.stream) this.stream.getTracks().forEach((tr) => tr.stop());
    if (!keepStream) this.stream = null;
  }
}

function gathered(pc, ms) {
  if (pc.iceGatheringState === 'complete') return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { clearTimeout(timer); resolve(); };
    const timer = setTimeout(done, ms);
    pc.addEventListener('icegatheringstatechange', () => {
      if (pc.iceGatheringState === 'complete') done();
    });
  });
}

function connected(pc, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('timeout')), ms);
    const check = () => {
      if (pc.connectionState === 'connected') { clearTimeout(timer); resolve(); }
      if (pc.connectionState === 'failed') { clearTimeout(timer); reject(new Error('failed')); }
    };
    pc.addEventListener('connectionstatechange', check);
    check();
  });
}
