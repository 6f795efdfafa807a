// One RTCPeerConnection per remote peer, with "perfect negotiation" (W3C WebRTC example):
// the polite side rolls back its own offer on a glare, the impolite side ignores the other's,
// so two offers crossing never break a call. ICE restarts when the connection fails.

// A brief 'disconnected' often heals by itself (Wi-Fi roaming); restart ICE if it does not.
const DISCONNECTED_GRACE_MS = 4000;

const fingerprint = (sdp) => (/a=fingerprint:(\S+ \S+)/.exec(sdp || '') || [])[1] || '';

export class PeerLink {
  // offerer: this side makes the first offer (protocol: the peer id that sorts first).
  // polite: this side yields on a glare (protocol: the patient; otherwise the non-offerer).
  constructor({ peerId, polite, offerer, iceServers, signal, onTrack, onState }) {
    this.peerId = peerId;
    this.polite = polite;
    this.signal = signal;
    this.started = offerer;
    this.makingOffer = false;
    this.ignoreOffer = false;
    this.restarting = false;
    this.onState = onState || (() => {});
    this.pc = new RTCPeerConnection({ iceServers: iceServers || [] });
    this.pc.ontrack = (event) => onTrack(event, this);
    this.pc.onicecandidate = ({ candidate }) => {
      this.signal.candidate(this.peerId, candidate ? candidate.toJSON() : null);
    };
    this.pc.onnegotiationneeded = () => this.negotiate();
    this.pc.onconnectionstatechange = () => this.connectionChanged();
  }

  addLocal(stream, { video = true } = {}) {
    const audio = stream ? stream.getAudioTracks()[0] : null;
    const cam = stream ? stream.getVideoTracks()[0] : null;
    if (audio) this.audioSender = this.pc.addTrack(audio, stream);
    else this.pc.addTransceiver('audio', { direction: 'recvonly' });
    if (cam && video) this.videoSender = this.pc.addTrack(cam, stream);
    else {
      // Without a camera we still want to see the other side, and to add a camera later.
      this.videoSender = this.pc.addTransceiver('video',
        { direction: 'sendrecv', streams: stream ? [stream] : [] }).sender;
    }
  }

  async negotiate() {
    // The answering side waits for the first offer instead of racing it.
    if (!this.started || this.pc.signalingState === 'closed') return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription();
      this.signal.offer(this.peerId, this.pc.localDescription.sdp, this.restarting);
      this.restarting = false;
    } catch {
      // A closed or rolled-back connection: the next negotiationneeded tries again.
    } finally {
      this.makingOffer = false;
    }
  }

  // True when an incoming offer comes from a brand-new connection on the other side (a page
  // reload): its DTLS fingerprint differs, so this connection cannot continue.
  isFromNewPeer(sdp) {
    const current = this.pc.remoteDescription;
    return !!current && fingerprint(current.sdp) !== fingerprint(sdp);
  }

  async description(type, sdp) {
    const pc = this.pc;
    // An answer to an offer we no longer have (rolled back in a glare, or sent by a connection
    // that was replaced meanwhile) must not be applied to the current one.
    if (type === 'answer' && pc.signalingState !== 'have-local-offer') return;
    const collision = type === 'offer' && (this.makingOffer || pc.signalingState !== 'stable');
    this.ignoreOffer = !this.polite && collision;
    if (this.ignoreOffer) return;
    try {
      await pc.setRemoteDescription({ type, sdp });
      if (type === 'offer') {
        this.started = true;
        await pc.setLocalDescription();
        this.signal.answer(this.peerId, pc.localDescription.sdp);
      }
    } catch {
      if (pc.signalingState !== 'closed') this.restart();
    }
  }

  async candidate(candidate) {
    try {
      await this.pc.addIceCandidate(candidate || null);
    } catch {
      // Candidates of an offer we ignored (glare) are expected to fail.
    }
  }

  connectionChanged() {
    const state = this.pc.connectionState;
    this.onState(state, this);
    clearTimeout(this.graceTimer);
    if (state === 'failed') this.restart();
    if (state === 'disconnected') {
      this.graceTimer = setTimeout(() => {
        if (this.pc.connectionState === 'disconnected') this.restart();
      }, DISCONNECTED_GRACE_MS);
    }
  }

  restart() {
    if (this.pc.signalingState === 'closed') return;
    this.started = true;
    this.restarting = true;
    this.pc.restartIce();
  }

  async setVideoTrack(track) {
    if (this.videoSender) await this.videoSender.replaceTrack(track);
  }

  // Screen sharing adds a second video stream (the other side shows it large), which is a
  // renegotiation that either side may start: perfect negotiation carries it.
  addScreen(track, stream) {
    this.started = true;
    this.screenSender = this.pc.addTrack(track, stream);
  }

  removeScreen() {
    if (this.screenSender && this.pc.signalingState !== 'closed') {
      this.pc.removeTrack(this.screenSender);
    }
    this.screenSender = null;
  }

  close() {
    clearTimeout(this.graceTimer);
    this.pc.ontrack = this.pc.onicecandidate = this.pc.onnegotiationneeded = null;
    this.pc.onconnectionstatechange = null;
    this.pc.close();
  }
}
