// sandboxd web terminal: the connection to the daemon (docs/protocol.md).
// Requests carry a `ref` and resolve with the reply that echoes it (or reject with the
// `error` that does); other events and binary output frames go to the handlers. A
// dropped connection is re-opened with backoff; the page then re-joins and re-attaches.
"use strict";

class Connection {
  /** handlers: {url(), onOpen(first), onClose(everConnected), onEvent(event, data), onOutput(frame)} */
  constructor(handlers) {
    this.h = handlers;
    this.ws = null;
    this.connected = false;
    this.everConnected = false;
    this.backoff = 250;
    this.refs = 0;
    this.pending = new Map();
  }

  connect() {
    const ws = new WebSocket(this.h.url());
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    ws.onopen = () => {
      const first = !this.everConnected;
      this.connected = true; this.everConnected = true; this.backoff = 250;
      this.h.onOpen(first);
    };
    ws.onmessage = (msg) => {
      if (typeof msg.data !== "string") return this.h.onOutput(parseOutputFrame(msg.data));
      const { event, data } = JSON.parse(msg.data);
      const waiting = data && data.ref !== undefined && this.pending.get(data.ref);
      if (!waiting) return this.h.onEvent(event, data || {});
      this.pending.delete(data.ref);
      if (event === "error") waiting.reject(Object.assign(new Error(`${data.code}: ${data.message}`), { code: data.code }));
      else waiting.resolve(data);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      const wasOpen = this.connected;
      this.connected = false;
      for (const { reject } of this.pending.values()) reject(Object.assign(new Error("connection lost"), { code: "OFFLINE" }));
      this.pending.clear();
      this.h.onClose(wasOpen || this.everConnected);
      this.timer = setTimeout(() => this.connect(), this.backoff);
      this.backoff = Math.min(this.backoff * 2, 5000);
    };
  }

  /** Send without waiting for a reply; false when offline (the frame is dropped). */
  send(event, data) {
    if (!this.connected) return false;
    this.ws.send(JSON.stringify({ event, data }));
    return true;
  }

  /** Send and wait for the reply that carries the same ref. */
  call(event, data = {}) {
    const ref = `w${++this.refs}`;
    return new Promise((resolve, reject) => {
      if (!this.connected) return reject(Object.assign(new Error("not connected"), { code: "OFFLINE" }));
      this.pending.set(ref, { resolve, reject });
      this.send(event, { ...data, ref });
    });
  }

  /** Close the socket as a network failure would (it reconnects by itself). */
  drop() { if (this.ws) this.ws.close(); }

  /** Connect again now (a new token): not after the backoff a refused page has built up. */
  reconnectNow() {
    this.backoff = 250;
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) return this.ws.close();
    clearTimeout(this.timer);
    this.connect();
  }
}

/** A binary output frame: kind, stream, seq (u64 BE), id length, id, bytes. */
function parseOutputFrame(buffer) {
  const view = new DataView(buffer);
  const n = view.getUint8(10);
  return {
    stream: view.getUint8(1),
    seq: Number(view.getBigUint64(2)),
    id: String.fromCharCode(...new Uint8Array(buffer, 11, n)),
    bytes: new Uint8Array(buffer, 11 + n),
  };
}

/** The part of a chunk at `seq` not yet shown, given `have` bytes shown; null if none. */
function unseen(have, seq, bytes) {
  if (seq > have) return null;                  // ahead of us: the replay we asked for fills in first
  if (seq + bytes.length <= have) return null;  // already shown (replayed after a reconnect)
  return seq < have ? bytes.subarray(have - seq) : bytes;
}
