// Scenarios for tests/docker/test_socketio.py, run with the real npm socket.io-client.
//
//   node socketio_client.js SCENARIO '{"url": "http://127.0.0.1:PORT", ...}'
//
// Each scenario asserts what a user of the seed's clients relies on and exits 0, or
// prints the failed assertion and exits 1. Every wait is bounded.
"use strict";
const assert = require("node:assert/strict");
const { io } = require("socket.io-client");
const WebSocket = require("ws");

const [scenario, argJson] = process.argv.slice(2);
const args = JSON.parse(argJson);
const URL = args.url;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const WAIT = 60000;

function until(emitter, event, pred = () => true, ms = WAIT) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event} within ${ms} ms`)), ms);
    const on = (data) => {
      if (!pred(data)) return;
      clearTimeout(timer);
      emitter.off(event, on);
      resolve(data);
    };
    emitter.on(event, on);
  });
}

function connected(socket) {
  if (socket.connected) return Promise.resolve();
  return Promise.race([
    until(socket, "connect"),
    until(socket, "connect_error").then((e) => { throw new Error(`connect_error: ${e.message}`); }),
  ]);
}

const ack = (socket, event, data) => socket.timeout(WAIT).emitWithAck(event, data);

async function withSandbox(fn) {
  const admin = io(URL, { transports: ["websocket"], forceNew: true, reconnection: false, auth: args.auth });
  await connected(admin);
  const { containerId } = await ack(admin, "create-container", {});
  try {
    return await fn(containerId);
  } finally {
    await ack(admin, "remove-container", { containerId });
    admin.disconnect();
  }
}

// Runs `cmd` through execute-command and gathers its output until it completes; checks
// that every chunk's seq continues its stream exactly.
function collector(socket, names) {
  const runs = new Map();
  const run = (id) => {
    if (!runs.has(id)) {
      let done;
      runs.set(id, { stdout: [], stderr: [], next: { stdout: 0, stderr: 0 }, events: [],
                     finished: new Promise((r) => { done = r; }), done });
    }
    return runs.get(id);
  };
  socket.on(names.output, (d) => {
    const r = run(d.executionId);
    const bytes = Buffer.isBuffer(d.data) ? d.data
      : Buffer.from(d.data, d.encoding === "base64" ? "base64" : "utf8");
    assert.equal(d.seq, r.next[d.type], `${d.type} chunk at ${d.seq}, expected ${r.next[d.type]}`);
    r.next[d.type] += bytes.length;
    r[d.type].push(bytes);
    r.events.push(d);
  });
  socket.on(names.complete, (d) => run(d.executionId).done(d));
  return async (executionId) => {
    const r = run(executionId);
    const timeout = new Promise((_, rej) => setTimeout(() => rej(new Error(`${executionId} did not end`)), WAIT));
    const complete = await Promise.race([r.finished, timeout]);
    return { complete, stdout: Buffer.concat(r.stdout), stderr: Buffer.concat(r.stderr), events: r.events };
  };
}

function seqText(n) {
  let s = "";
  for (let i = 1; i <= n; i++) s += `${i}\n`;
  return s;
}

const scenarios = {
  // The first design's React WebTerminal, verbatim: io(apiUrl), join-session, execute-command.
  async "first-design"() {
    await withSandbox(async (containerId) => {
      const apiUrl = URL;
      const socket = args.transports ? io(apiUrl, { transports: args.transports }) : io(apiUrl);
      const accepted = [];
      socket.on("command-accepted", (d) => accepted.push(d));
      const finished = collector(socket, { output: "exec-output", complete: "exec-finished" });
      socket.on("connect", () => socket.emit("join-session", { containerId }));
      const joined = await until(socket, "session-joined");
      assert.deepEqual(joined, { containerId });

      // Large output right away: when upgrading, it spans the switch from polling.
      const big = 300000;
      socket.emit("execute-command", { containerId, command: ["/bin/sh", "-c", `seq 1 ${big}`] });
      await until(socket, "command-accepted", () => accepted.length >= 1);
      let r = await finished(accepted[0].executionId);
      assert.equal(r.stdout.toString(), seqText(big), "large output whole and in order");
      assert.deepEqual([r.complete.status, r.complete.exitCode], ["success", 0]);

      socket.emit("execute-command", { containerId,
        command: ["/bin/sh", "-c", "echo out1; echo err1 >&2; echo out2; exit 7"] });
      await until(socket, "command-accepted", () => accepted.length >= 2);
      r = await finished(accepted[1].executionId);
      assert.equal(r.stdout.toString(), "out1\nout2\n");
      assert.equal(r.stderr.toString(), "err1\n");
      assert.equal(r.complete.executionId, accepted[1].executionId);
      assert.deepEqual([r.complete.status, r.complete.exitCode], ["failed", 7]);
      assert.match(r.complete.timestamp, ISO);
      for (const e of r.events) assert.match(e.timestamp, ISO);

      const error = until(socket, "error");
      socket.emit("execute-command", { containerId: "0".repeat(64), command: ["true"] });
      const e = await error;
      assert.equal(e.code, "NOT_FOUND");
      assert.equal(typeof e.message, "string");

      if (args.expectTransport) {
        if (socket.io.engine.transport.name !== args.expectTransport) await until(socket.io.engine, "upgrade");
        assert.equal(socket.io.engine.transport.name, args.expectTransport);
      }
      socket.disconnect();
    });
  },

  // The second design: path /sandbox/ws, join-container with a bare string.
  async "second-design"() {
    await withSandbox(async (containerId) => {
      const socket = io(URL, { path: "/sandbox/ws", transports: args.transports || ["websocket", "polling"] });
      const finished = collector(socket, { output: "execution-output", complete: "execution-complete" });
      socket.emit("join-container", containerId);
      const joined = await until(socket, "container-joined");
      assert.deepEqual(joined, { containerId, success: true });
      assert.equal(typeof socket.id, "string");
      // Another socket joined to the sandbox watches (from the execution's log).
      const watcher = io(URL, { path: "/sandbox/ws", transports: ["websocket"], forceNew: true, reconnection: false });
      const watched = collector(watcher, { output: "execution-output", complete: "execution-complete" });
      watcher.emit("join-container", containerId);
      await until(watcher, "container-joined");
      const announced = until(watcher, "execution-started");
      const accepted = await ack(socket, "execute-command",
        { containerId, command: ["/bin/sh", "-c", "printf 'a\\n'; printf 'b\\n' >&2; exit 3"] });
      assert.equal((await announced).executionId, accepted.executionId);
      const seen = await watched(accepted.executionId);
      assert.deepEqual([seen.stdout.toString(), seen.stderr.toString(), seen.complete.exitCode], ["a\n", "b\n", 3]);
      watcher.disconnect();
      const r = await finished(accepted.executionId);
      assert.equal(r.stdout.toString(), "a\n");
      assert.equal(r.stderr.toString(), "b\n");
      assert.equal(r.complete.containerId, containerId);
      assert.deepEqual([r.complete.status, r.complete.exitCode], ["failed", 3]);
      assert.match(r.complete.timestamp, ISO);
      for (const e of r.events) {
        assert.equal(e.containerId, containerId);
        assert.match(e.timestamp, ISO);
      }
      socket.disconnect();
    });
  },

  // The second design's REST half, verbatim: POST /api/sandbox/exec/realtime with
  // socketSessionId: socket.id; the output streams to that socket (and only once, though
  // it also joined the sandbox). args.token: sent as a bearer token to REST and Socket.IO.
  async "rest-realtime"() {
    const auth = args.token ? { token: args.token } : undefined;
    const headers = { "Content-Type": "application/json" };
    if (args.token) headers.Authorization = `Bearer ${args.token}`;
    const base = URL;
    const created = await fetch(base + "/api/sandbox/containers", { method: "POST", headers, body: "{}" });
    assert.equal(created.status, 201);
    const { containerId } = await created.json();
    const socket = io(URL, { path: "/sandbox/ws", transports: args.transports || ["websocket", "polling"], auth });
    const finished = collector(socket, { output: "execution-output", complete: "execution-complete" });
    socket.emit("join-container", containerId);
    await until(socket, "container-joined");
    const command = ["/bin/sh", "-c", "echo out; head -c 70000 /dev/zero | tr '\\0' x >&2; exit 5"];
    const r = await fetch(base + "/api/sandbox/exec/realtime", {
      method: "POST",
      headers,
      body: JSON.stringify({ containerId, command, socketSessionId: socket.id }),
    });
    assert.equal(r.status, 202);
    const { executionId } = await r.json();
    const got = await finished(executionId);
    assert.equal(got.stdout.toString(), "out\n");
    assert.equal(got.stderr.toString(), "x".repeat(70000));
    assert.deepEqual([got.complete.status, got.complete.exitCode], ["failed", 5]);
    assert.match(got.complete.timestamp, ISO);
    for (const e of got.events) assert.match(e.timestamp, ISO);
    const other = await fetch(base + "/api/sandbox/exec/realtime", { method: "POST", headers,
      body: JSON.stringify({ containerId, command: ["true"], socketSessionId: "not-a-socket" }) });
    assert.equal(other.status, 404);
    assert.equal((await other.json()).error.code, "NOT_FOUND");
    socket.disconnect();
    assert.equal((await fetch(`${base}/api/sandbox/containers/${containerId}`, { method: "DELETE", headers })).status, 200);
  },

  // Acks, stdin (text and binary attachments), kill, errors, binary output.
  async interactive() {
    await withSandbox(async (containerId) => {
      const socket = io(URL, { transports: args.transports, forceNew: true, reconnection: false });
      await connected(socket);
      const finished = collector(socket, { output: "execution-output", complete: "execution-complete" });

      const cat = await ack(socket, "execute-command", { containerId, command: ["cat"], stdin: true });
      assert.deepEqual(Object.keys(cat).sort(), ["containerId", "executionId"]);
      assert.deepEqual(await ack(socket, "stdin-data", { executionId: cat.executionId, data: "hello\n" }), {});
      const raw = Buffer.from([0xff, 0x00, 0x41, 0xfe]);
      assert.deepEqual(await ack(socket, "stdin-data", { executionId: cat.executionId, data: raw }), {});
      assert.deepEqual(await ack(socket, "stdin-close", { executionId: cat.executionId }), {});
      let r = await finished(cat.executionId);
      assert.deepEqual(r.stdout, Buffer.concat([Buffer.from("hello\n"), raw]), "stdin bytes back exactly");
      assert.ok(r.events.some((e) => e.encoding === "base64"), "non-UTF-8 output comes as base64");
      assert.equal(r.complete.status, "success");

      const sleeper = await ack(socket, "execute-command", { containerId, command: ["sleep", "100"] });
      const sent = await ack(socket, "kill", { executionId: sleeper.executionId });
      assert.deepEqual(sent, { executionId: sleeper.executionId, signal: "TERM" });
      r = await finished(sleeper.executionId);
      assert.equal(r.complete.status, "killed");

      const refused = await ack(socket, "kill", { executionId: "exec-0000000000000000" });
      assert.equal(refused.error.code, "NOT_FOUND");
      const unknown = await ack(socket, "no-such-event", {});
      assert.equal(unknown.error.code, "UNKNOWN_EVENT");
      assert.equal((await ack(socket, "kill", 42)).error.code, "BAD_REQUEST");
      assert.deepEqual(await ack(socket, "join-container", containerId), { containerId, success: true });
      const errorEvent = until(socket, "error");
      socket.emit("stdin-data", { executionId: "exec-0000000000000000", data: "x" });
      assert.equal((await errorEvent).code, "NOT_FOUND");

      assert.equal((await ack(socket, "configure-session", { binaryOutput: true })).binaryOutput, true);
      const bin = await ack(socket, "execute-command", { containerId, command: ["printf", "\\377\\000abc"] });
      r = await finished(bin.executionId);
      assert.deepEqual(r.stdout, Buffer.from([0xff, 0x00, 0x61, 0x62, 0x63]));
      assert.ok(Buffer.isBuffer(r.events[0].data), "binary output arrives as a Buffer attachment");
      socket.disconnect();
    });
  },

  // Tokens: auth: {token} (socket.io-client's idiom), ?token=, Authorization; refusals.
  async auth() {
    const { token } = args;
    const tryConnect = async (opts) => {
      const socket = io(URL, { forceNew: true, reconnection: false, ...opts });
      try {
        return await Promise.race([
          until(socket, "connect").then(() => ({ ok: true, id: socket.id })),
          until(socket, "connect_error").then((e) => ({ ok: false, message: e.message })),
        ]);
      } finally {
        socket.disconnect();
      }
    };
    for (const transports of [["polling"], ["websocket"]]) {
      assert.equal((await tryConnect({ transports, auth: { token } })).ok, true);
      assert.deepEqual(await tryConnect({ transports }), { ok: false, message: "authentication required" });
      assert.equal((await tryConnect({ transports, auth: { token: "wrong" } })).ok, false);
      assert.equal((await tryConnect({ transports, query: { token } })).ok, true);
      assert.equal((await tryConnect({ transports, extraHeaders: { Authorization: `Bearer ${token}` } })).ok, true);
    }
    const other = await tryConnect({ transports: ["websocket"], auth: { token } });
    const nsp = io(`${URL}/admin`, { forceNew: true, reconnection: false, auth: { token } });
    const e = await until(nsp, "connect_error");
    assert.equal(e.message, "Invalid namespace");
    nsp.disconnect();
    assert.equal(other.ok, true);
  },

  // The Engine.IO protocol's error answers, and CORS, with plain HTTP.
  async http() {
    const base = `${URL}/socket.io/?EIO=4&transport=polling`;
    const handshake = async (headers = {}) => {
      const res = await fetch(base, { headers });
      assert.equal(res.status, 200);
      return JSON.parse((await res.text()).slice(1)).sid;
    };
    const expectError = async (res, code, message) => {
      assert.equal(res.status, 400);
      assert.deepEqual(await res.json(), { code, message });
    };
    await expectError(await fetch(`${base}&sid=nope`), 1, "Session ID unknown");
    await expectError(await fetch(`${URL}/socket.io/?EIO=3&transport=polling`), 5, "Unsupported protocol version");
    await expectError(await fetch(`${URL}/sandbox/ws/?EIO=3&transport=polling`), 5, "Unsupported protocol version");
    await expectError(await fetch(`${URL}/socket.io/?EIO=4&transport=carrier-pigeon`), 0, "Transport unknown");

    // Two polls at once: one is refused, the other gets "close", the session is gone.
    let sid = await handshake();
    const both = await Promise.all([fetch(`${base}&sid=${sid}`), fetch(`${base}&sid=${sid}`)]);
    const answers = await Promise.all(both.map(async (r) => [r.status, await r.text()]));
    answers.sort();
    assert.deepEqual(answers, [[200, "1"], [400, JSON.stringify({ code: 3, message: "Bad request" })]]);
    await expectError(await fetch(`${base}&sid=${sid}`), 1, "Session ID unknown");

    // A malformed payload closes the session.
    sid = await handshake();
    assert.equal((await fetch(`${base}&sid=${sid}`, { method: "POST", body: "abc" })).status, 400);
    await expectError(await fetch(`${base}&sid=${sid}`), 1, "Session ID unknown");

    // Text and binary packets both ways; an empty poll returns within pingInterval.
    sid = await handshake();
    const connect = `40${JSON.stringify({ token: args.token })}`;
    let res = await fetch(`${base}&sid=${sid}`, { method: "POST", body: `${connect}\x1e42["ping",{"ref":1}]` });
    assert.equal(await res.text(), "ok");
    const packets = [];
    while (packets.length < 2) {
      for (const p of (await (await fetch(`${base}&sid=${sid}`)).text()).split("\x1e")) {
        if (p === "2") await fetch(`${base}&sid=${sid}`, { method: "POST", body: "3" });
        else packets.push(p);
      }
    }
    assert.match(packets[0], /^40\{"sid":"[\w-]{20}"\}$/);
    assert.equal(packets[1], '42["pong",{"ref":1}]');
    const started = Date.now();
    assert.match(await (await fetch(`${base}&sid=${sid}`)).text(), /^[26]$/);  // a ping, or a noop
    assert.ok(Date.now() - started < args.pingIntervalMs + 5000, "an empty poll returns within pingInterval");
    res = await fetch(`${base}&sid=${sid}`, { method: "POST", body: "3\x1e41" });
    assert.equal(await res.text(), "ok");

    // CORS: an allowed origin is echoed (with credentials) on every answer, errors too.
    const allowed = { Origin: args.allowedOrigin };
    const corsOf = (r) => [r.headers.get("access-control-allow-origin"), r.headers.get("access-control-allow-credentials")];
    res = await fetch(base, { headers: allowed });
    assert.deepEqual(corsOf(res), [args.allowedOrigin, "true"]);
    sid = JSON.parse((await res.text()).slice(1)).sid;
    res = await fetch(`${base}&sid=${sid}`, { method: "OPTIONS", headers: { ...allowed,
      "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type" } });
    assert.ok(res.status < 300);
    assert.deepEqual(corsOf(res), [args.allowedOrigin, "true"]);
    assert.match(res.headers.get("access-control-allow-methods"), /POST/);
    res = await fetch(`${base}&sid=${sid}`, { method: "POST", body: connect, headers: allowed });
    assert.deepEqual(corsOf(res), [args.allowedOrigin, "true"]);
    res = await fetch(`${base}&sid=nope`, { headers: allowed });
    assert.equal(res.status, 400);
    assert.deepEqual(corsOf(res), [args.allowedOrigin, "true"]);
    if (args.refusedOrigin) {
      res = await fetch(base, { headers: { Origin: args.refusedOrigin } });
      assert.equal(res.status, 403);
      assert.deepEqual(corsOf(res), [null, null]);
    }
  },

  // A client that stops answering pings is disconnected: polling and WebSocket.
  async heartbeat() {
    const base = `${URL}/socket.io/?EIO=4&transport=polling`;
    const sid = JSON.parse((await (await fetch(base)).text()).slice(1)).sid;
    const ws = new WebSocket(`${URL.replace("http", "ws")}/socket.io/?EIO=4&transport=websocket`);
    const frames = [];
    ws.on("message", (m) => frames.push(m.toString()));
    const closed = new Promise((r) => ws.on("close", r));
    await until(ws, "open");
    const deadline = Date.now() + args.pingIntervalMs + args.pingTimeoutMs + 20000;
    await Promise.race([closed, new Promise((_, rej) => setTimeout(() => rej(new Error("ws not closed")),
      deadline - Date.now()))]);
    assert.match(frames[0], /^0\{"sid":"[\w-]{20}","upgrades":\[\],/, "websocket-only clients get no upgrades");
    assert.ok(frames.includes("2"), "the server pinged");
    for (;;) {
      const res = await fetch(`${base}&sid=${sid}`, { method: "POST", body: "6" });
      if (res.status === 400) break;
      assert.ok(Date.now() < deadline, "a silent polling client was not closed");
      await new Promise((r) => setTimeout(r, 500));
    }
  },
};

const fn = scenarios[scenario];
if (!fn) {
  console.error(`unknown scenario ${scenario}`);
  process.exit(2);
}
fn().then(() => {
  console.log(`ok ${scenario}`);
  process.exit(0);
}, (err) => {
  console.error(err && err.stack ? err.stack : err);
  process.exit(1);
});
