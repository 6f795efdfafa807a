// Connection quality from getStats(): a level for the indicator and the signal to fall back to
// sound only when the network cannot carry video.

export const SAMPLE_MS = 2000;
// Below these the picture freezes or the sound breaks up (measured as seen by the sender).
const POOR = { loss: 0.10, rttMs: 800, kbps: 150 };
const FAIR = { loss: 0.03, rttMs: 300, kbps: 400 };
// Consecutive poor samples (x SAMPLE_MS) before giving up on video: 6 s, not a single hiccup.
export const POOR_SAMPLES_FOR_AUDIO_ONLY = 3;

export function level({ loss, rttMs, kbps }) {
  if (loss > POOR.loss || rttMs > POOR.rttMs || (kbps !== null && kbps < POOR.kbps)) return 'poor';
  if (loss > FAIR.loss || rttMs > FAIR.rttMs || (kbps !== null && kbps < FAIR.kbps)) return 'fair';
  return 'good';
}

// Reads one pc's stats; returns the numbers that matter here.
export async function sample(pc, previous) {
  const report = await pc.getStats();
  let rttMs = 0; let kbps = null; let framesDecoded = 0; let lost = 0; let received = 0;
  let bytesSent = 0; let remoteLoss = 0;
  report.forEach((s) => {
    if (s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded') {
      if (s.currentRoundTripTime !== undefined) rttMs = Math.max(rttMs, s.currentRoundTripTime * 1000);
      if (s.availableOutgoingBitrate !== undefined) kbps = s.availableOutgoingBitrate / 1000;
    }
    if (s.type === 'inbound-rtp') {
      lost += s.packetsLost || 0;
      received += s.packetsReceived || 0;
      if (s.kind === 'video') framesDecoded += s.framesDecoded || 0;
    }
    if (s.type === 'outbound-rtp') bytesSent += s.bytesSent || 0;
    if (s.type === 'remote-inbound-rtp') {
      remoteLoss = Math.max(remoteLoss, s.fractionLost || 0);
      if (s.roundTripTime !== undefined) rttMs = Math.max(rttMs, s.roundTripTime * 1000);
    }
  });
  // Loss over the last interval, not since the start of the call.
  const dLost = lost - (previous ? previous.lost : 0);
  const dReceived = received - (previous ? previous.received : 0);
  const loss = Math.max(remoteLoss, dLost > 0 ? dLost / (dLost + Math.max(dReceived, 0)) : 0);
  return { rttMs: Math.round(rttMs), kbps, loss, framesDecoded, lost, received, bytesSent };
}

// Polls a set of peer connections; calls onLevel(level, stats) and onPoor() after a run of
// poor samples (once, until reset()).
export class QualityMonitor {
  constructor({ onLevel, onPoor }) {
    this.onLevel = onLevel;
    this.onPoor = onPoor;
    this.previous = new Map();
    this.poorRun = 0;
    this.fired = false;
    this.timer = setInterval(() => this.tick(), SAMPLE_MS);
    this.pcs = () => [];
  }

  watch(getPcs) { this.pcs = getPcs; }

  reset() { this.poorRun = 0; this.fired = false; }

  async tick() {
    const live = this.pcs().filter((pc) => pc.connectionState === 'connected');
    if (!live.length) return;
    let worst = 'good'; let last = null;
    for (const pc of live) {
      let s;
      try { s = await sample(pc, this.previous.get(pc)); } catch { continue; }
      this.previous.set(pc, s);
      const l = level(s);
      if (l === 'poor' || (l === 'fair' && worst === 'good')) worst = l;
      last = s;
    }
    if (!last) return;
    this.poorRun = worst === 'poor' ? this.poorRun + 1 : 0;
    this.onLevel(worst, last);
    if (this.poorRun >= POOR_SAMPLES_FOR_AUDIO_ONLY && !this.fired) {
      this.fired = true;
      this.onPoor();
    }
  }

  stop() { clearInterval(this.timer); }
}
