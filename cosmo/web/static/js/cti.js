// The CTI socket as the pages use it: hello or resume, heart-beats, commands with
// replies, reconnection with back-off.  The protocol is described in docs/CTI.md.

import { clock, linkState } from "./common.js";

const BACKOFF_MS = [300, 1000, 2000, 4000, 8000];

export class CtiSocket {
  /**
   * @param {(message: object) => void} onMessage  every stream message (snapshot, offer, ...)
   */
  constructor(onMessage) {
    this.onMessage = onMessage;
    this.ws = null;
    this.stream = null;
    this.epoch = null;
    this.seq = 0;
    this.pending = new Map();
    this.ids = 0;
    this.attempt = 0;
    this.welcome = null;
    this.stopped = false;
    this.resumes = 0;
  }

  connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const ws = new WebSocket(`${scheme}//${location.host}/cti`);
    this.ws = ws;
    linkState("connecting");
    ws.addEventListener("message", (event) => this.receive(event.data));
    ws.addEventListener("close", (event) => this.closed(event));
  }

  receive(text) {
    let message;
    try { message = JSON.parse(text); } catch { return; }
    switch (message.type) {
      case "welcome": return this.welcomed(message);
      case "ping": this.raw({ type: "pong", ts: message.ts }); clock.offset = message.ts * 1000 - Date.now(); return;
      case "ack": case "error": {
        const waiter = message.re !== null && message.re !== undefined ? this.pending.get(message.re) : null;
        if (waiter) { this.pending.delete(message.re); waiter(message); }
        else if (message.type === "error") this.onMessage(message);
        return;
      }
      case "resumed": this.attempt = 0; this.resumes += 1; linkState("live"); this.onMessage(message); return;
      default: break;
    }
    if (typeof message.seq === "number") {
      if (message.type === "snapshot") {
        this.seq = message.seq;
        this.epoch = message.epoch;
        this.attempt = 0;
        linkState("live");
      } else if (message.seq <= this.seq) {
        return; // seen already (a replay overlapping what arrived live)
      } else if (message.seq > this.seq + 1) {
        this.raw({ type: "hello" }); // a gap: start afresh from a snapshot
        return;
      } else {
        this.seq = message.seq;
      }
      this.remember();
    }
    this.onMessage(message);
  }

  welcomed(message) {
    this.welcome = message;
    this.stream = message.stream;
    clock.offset = message.server_time * 1000 - Date.now();
    const saved = this.saved();
    if (saved && saved.epoch === message.epoch) {
      this.seq = saved.seq;
      this.epoch = saved.epoch;
      this.raw({ type: "resume", epoch: saved.epoch, seq: saved.seq });
    } else {
      this.raw({ type: "hello" });
    }
  }

  key() { return `cosmo.cti.${this.stream}`; }

  saved() {
    try { return JSON.parse(sessionStorage.getItem(this.key()) || "null"); } catch { return null; }
  }

  remember() {
    try { sessionStorage.setItem(this.key(), JSON.stringify({ epoch: this.epoch, seq: this.seq })); } catch { /* private mode */ }
  }

  closed(event) {
    linkState("closed");
    for (const waiter of this.pending.values()) waiter({ type: "error", status: 0, message: "connection lost" });
    this.pending.clear();
    if (this.stopped) return;
    if (event.code === 4001) { location.assign(`/login?next=${encodeURIComponent(location.pathname)}`); return; }
    const wait = BACKOFF_MS[Math.min(this.attempt, BACKOFF_MS.length - 1)];
    this.attempt += 1;
    setTimeout(() => this.connect(), wait);
  }

  raw(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(message));
  }

  /** Send a command; resolves with its ack, rejects with its error ({status, message}). */
  command(message) {
    const id = ++this.ids;
    return new Promise((resolve, reject) => {
      if (!this.ws || this.ws.readyState !== WebSocket.OPEN) {
        reject({ status: 0, message: "not connected" });
        return;
      }
      const timer = setTimeout(() => { this.pending.delete(id); reject({ status: 0, message: "no answer" }); }, 15000);
      this.pending.set(id, (reply) => {
        clearTimeout(timer);
        if (reply.type === "ack") resolve(reply.result || {}); else reject(reply);
      });
      this.ws.send(JSON.stringify({ ...message, id }));
    });
  }

  /** Drop the socket (tests and sign-out); reconnects unless ``stop``. */
  drop(stop = false) {
    this.stopped = stop;
    if (this.ws) this.ws.close();
  }
}
