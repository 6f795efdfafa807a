// The signalling WebSocket (docs/protocol.md): one function per client message, reconnection
// with the protocol's backoff, and a tiny event emitter for server messages by type.

import { reportError } from './client-errors.js';

export const PROTOCOL_VERSION = 1;
const BACKOFF_MS = [500, 1000, 2000];
const STEADY_MS = 3000;
// Fatal errors after which reconnecting cannot help, except a server restarting or not able
// to take the hello now, and a connection that could not keep up (the next one may).
const RETRY_AFTER_FATAL = new Set(['server_shutdown', 'try_again', 'too_slow', 'no_answer']);
const PING_MS = 20000;

export class SignalClient {
  constructor({ room = null, credential = null, lang = null, nursePresent = null } = {}) {
    this.hello = { type: 'hello', version: PROTOCOL_VERSION };
    if (room) this.hello.room = room;
    if (credential) this.hello.credential = credential;
    if (lang === 'it' || lang === 'en') this.hello.lang = lang;
    if (nursePresent !== null) this.hello.nurse_present = nursePresent;
    this.handlers = new Map();
    this.attempt = 0;
    this.fatal = null;
    this.stopped = false;
    this.ws = null;
    this.seq = 0;
  }

  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, []);
    this.handlers.get(type).push(fn);
    return this;
  }

  emit(type, msg) {
    for (const fn of this.handlers.get(type) || []) fn(msg);
  }

  connect() {
    this.stopped = false;
    const scheme = location.protocol === 'https:' ? 'wss://' : 'ws://';
    const ws = new WebSocket(scheme + location.host + '/ws');
    this.ws = ws;
    ws.onopen = () => {
      ws.send(JSON.stringify(this.hello));
      this.pinger = setInterval(() => this.ping(), PING_MS);
    };
    ws.onmessage = (event) => {
      let msg;
      try {
        msg = JSON.parse(event.data);
      } catch (err) {
        reportError(err);   // the server sent something that is not the protocol's JSON
        return;
      }
      if (msg.type === 'welcome') { this.attempt = 0; this.fatal = null; }
      if (msg.type === 'error' && msg.fatal) this.fatal = msg;
      this.emit(msg.type, msg);
      this.emit('*', msg);
    };
    ws.onclose = () => {
      clearInterval(this.pinger);
      if (this.ws !== ws) return;
      this.ws = null;
      const giveUp = this.stopped || (this.fatal && !RETRY_AFTER_FATAL.has(this.fatal.code));
      this.emit('disconnected', { willRetry: !giveUp, fatal: this.fatal });
      if (giveUp) return;
      const delay = BACKOFF_MS[this.attempt] ?? STEADY_MS;
      this.attempt += 1;
      this.timer = setTimeout(() => this.connect(), delay);
    };
  }

  get open() { return this.ws !== null && this.ws.readyState === WebSocket.OPEN; }

  send(msg) {
    if (!this.open) return false;
    this.seq += 1;
    this.ws.send(JSON.stringify({ id: 'c' + this.seq, ...msg }));
    return true;
  }

  close() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000);
  }

  ping() { return this.send({ type: 'ping' }); }
  admit(peer) { return this.send({ type: 'admit', peer }); }
  sendBack(peer) { return this.send({ type: 'send_back', peer }); }
  notice(peer, code, minutes) {
    const msg = { type: 'notice', peer, code };
    if (minutes) msg.minutes = minutes;
    return this.send(msg);
  }
  inviteStaff(staffId) { return this.send({ type: 'invite', staff_id: staffId }); }
  inviteGuest(label) {
    const msg = { type: 'invite', guest: true };
    if (label) msg.label = label;
    return this.send(msg);
  }
  offer(to, sdp, restart) { return this.send({ type: 'offer', to, sdp, restart: !!restart }); }
  answer(to, sdp) { return this.send({ type: 'answer', to, sdp }); }
  candidate(to, candidate) { return this.send({ type: 'candidate', to, candidate }); }
  mediaState(audio, video) { return this.send({ type: 'media_state', audio, video }); }
  // For the activity report: through a TURN relay, fallen back to sound only (two flags only).
  mediaReport(relay, soundOnly) { return this.send({ type: 'media_report', relay, sound_only: soundOnly }); }
  // `id` names the line: the same on a retry (receivers show a line once per sender and id).
  chat(text, id) { return this.send({ type: 'chat', id, text }); }
  safeAsk(peer) { return this.send({ type: 'safe_ask', peer }); }
  safeAnswer(answer) { return this.send({ type: 'safe_answer', answer }); }
  revokeGuest(guest) { return this.send({ type: 'revoke_guest', guest }); }
  leave() { const sent = this.send({ type: 'leave' }); this.stopped = true; return sent; }
  end() { return this.send({ type: 'end' }); }
}
