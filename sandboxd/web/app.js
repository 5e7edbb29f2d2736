// sandboxd web terminal: xterm.js on the daemon's WebSocket protocol (docs/protocol.md).
// Output arrives as binary frames (raw bytes, so xterm decodes UTF-8 across chunks);
// every chunk carries its byte offset, so after a dropped connection the page attaches
// again from exactly where it was: nothing lost, nothing repeated.
"use strict";

if (typeof Terminal === "undefined") {
  document.getElementById("banner").hidden = false;
  document.getElementById("banner").textContent = "xterm.js is not installed on the daemon: run scripts/setup.sh";
  throw new Error("xterm.js missing");
}

const SHELL = ["/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"];
const $ = (id) => document.getElementById(id);
const enc = new TextEncoder();

const params = new URLSearchParams(location.search);
let token = params.get("token") || sessionStorage.getItem("sandboxd-token") || "";
$("token").value = token;

const term = new Terminal({
  cursorBlink: true, scrollback: 20000, fontSize: 14,
  fontFamily: '"JetBrains Mono", "Fira Code", "DejaVu Sans Mono", Menlo, monospace',
  theme: { background: "#0f1117", foreground: "#d7dae0", cursor: "#5fb3ff", selectionBackground: "#2c3e57" },
});
const fit = new FitAddon.FitAddon();
term.loadAddon(fit);
term.open($("terminal"));
fit.fit();

const state = {
  ws: null, connected: false, everConnected: false, backoff: 250, refs: 0, pending: new Map(),
  containerId: params.get("sandbox") || "", mode: params.get("mode") === "command" ? "command" : "shell",
  exec: null,          // {id, tty, offsets: {1: n, 2: n}, done}
  history: [], historyAt: 0,
};

// --- connection ----------------------------------------------------------------------

function wsUrl() {
  const url = new URL("/sandbox/ws", location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  if (token) url.searchParams.set("token", token);
  return url.toString();
}

function setConn(s, text) { $("conn").dataset.state = s; $("conn-text").textContent = text; }

function connect() {
  setConn("connecting", state.everConnected ? "reconnecting…" : "connecting…");
  const ws = new WebSocket(wsUrl());
  ws.binaryType = "arraybuffer";
  state.ws = ws;
  ws.onopen = async () => {
    state.connected = true; state.everConnected = true; state.backoff = 250;
    setConn("connected", "connected");
    banner("");
    try {
      await call("configure-session", { binaryOutput: true });
      await refreshSandboxes();
      if (state.containerId) await call("join-container", { containerId: state.containerId });
      if (state.exec && !state.exec.done) {
        const o = state.exec.offsets;
        await call("attach-execution", { executionId: state.exec.id, since: { stdout: o[1], stderr: o[2] } });
      }
    } catch (err) { banner(err.message); }
  };
  ws.onmessage = (msg) => (typeof msg.data === "string" ? onEvent(JSON.parse(msg.data)) : onOutput(msg.data));
  ws.onclose = () => {
    const wasOpen = state.connected;
    state.connected = false;
    for (const { reject } of state.pending.values()) reject(new Error("connection lost"));
    state.pending.clear();
    if (!wasOpen && !state.everConnected) setConn("unauthorized", "cannot connect (token needed?)");
    else setConn("offline", "reconnecting…");
    setTimeout(connect, state.backoff);
    state.backoff = Math.min(state.backoff * 2, 5000);
  };
}

function send(event, data) {
  if (state.connected) state.ws.send(JSON.stringify({ event, data }));
}

function call(event, data = {}) {
  const ref = `w${++state.refs}`;
  return new Promise((resolve, reject) => {
    state.pending.set(ref, { resolve, reject });
    send(event, { ...data, ref });
  });
}

// --- events --------------------------------------------------------------------------

function onEvent({ event, data }) {
  if (data && data.ref && state.pending.has(data.ref)) {
    const { resolve, reject } = state.pending.get(data.ref);
    state.pending.delete(data.ref);
    return event === "error" ? reject(new Error(`${data.code}: ${data.message}`)) : resolve(data);
  }
  if (event === "error") return banner(`${data.code}: ${data.message}`);
  const ex = state.exec;
  if (!ex || !data || data.executionId !== ex.id) return;
  if (event === "execution-complete") finish(data);
  else if (event === "warning") term.write(`\r\n\x1b[33m[${data.code}: ${data.message}]\x1b[0m\r\n`);
}

function onOutput(buffer) {
  const view = new DataView(buffer);
  const stream = view.getUint8(1);
  const seq = Number(view.getBigUint64(2));
  const n = view.getUint8(10);
  const id = String.fromCharCode(...new Uint8Array(buffer, 11, n));
  let bytes = new Uint8Array(buffer, 11 + n);
  const ex = state.exec;
  if (!ex || id !== ex.id) return;
  const have = ex.offsets[stream];
  if (seq > have) return;                              // ahead of us: the replay we asked for fills in first
  if (seq + bytes.length <= have) return;            // already shown (replayed after reconnect)
  if (seq < have) bytes = bytes.subarray(have - seq);  // partly shown
  ex.offsets[stream] = have + bytes.length;
  if (ex.tty) return term.write(bytes);
  const text = crlf(bytes);                            // plain output: \n needs a \r on a terminal
  if (stream === 2) { term.write("\x1b[31m"); term.write(text); term.write("\x1b[0m"); }
  else term.write(text);
}

function crlf(bytes) {
  let count = 0;
  for (const b of bytes) if (b === 10) count++;
  if (!count) return bytes;
  const out = new Uint8Array(bytes.length + count);
  let j = 0;
  for (const b of bytes) { if (b === 10) out[j++] = 13; out[j++] = b; }
  return out;
}

function finish(data) {
  const ex = state.exec;
  ex.done = true;
  const code = data.exitCode === null ? "—" : data.exitCode;
  const why = data.reason ? ` · ${data.reason}` : "";
  setStatus(`${ex.id} · <b class="${data.status}">${data.status}</b> · exit ${code} · ${data.durationMs} ms${why}`);
  if (ex.tty) term.write(`\r\n\x1b[2m[shell ended: ${data.status}, exit ${code}]\x1b[0m\r\n`);
  else if (data.status !== "success") term.write(`\x1b[2m[${data.status}, exit ${code}]\x1b[0m\r\n`);
}

// --- actions -------------------------------------------------------------------------

async function refreshSandboxes() {
  const { containers } = await call("list-containers");
  const select = $("sandbox");
  select.innerHTML = '<option value="">—</option>';
  for (const c of containers) {
    const opt = document.createElement("option");
    opt.value = c.containerId;
    opt.textContent = `${c.containerId.slice(0, 12)} · ${c.image}`;
    select.appendChild(opt);
  }
  if (state.containerId && !containers.some((c) => c.containerId === state.containerId)) state.containerId = "";
  select.value = state.containerId;
}

async function useSandbox(id) {
  if (state.containerId && state.containerId !== id) await call("leave-container", { containerId: state.containerId }).catch(() => {});
  state.containerId = id;
  $("sandbox").value = id;
  if (id) await call("join-container", { containerId: id });
}

async function ensureSandbox() {
  if (!state.containerId) {
    const created = await call("create-container", $("image").value ? { image: $("image").value } : {});
    await refreshSandboxes();
    await useSandbox(created.containerId);
  }
  return state.containerId;
}

async function startShell() {
  const containerId = await ensureSandbox();
  term.reset();
  const accepted = await call("execute-command", {
    containerId, command: SHELL, tty: true, cols: term.cols, rows: term.rows,
  });
  state.exec = { id: accepted.executionId, tty: true, offsets: { 1: 0, 2: 0 }, done: false };
  setStatus(`${accepted.executionId} · <b>running</b> · shell`);
  term.focus();
}

async function runCommand(line) {
  const containerId = await ensureSandbox();
  term.write(`\x1b[1;36m$ ${line}\x1b[0m\r\n`);
  const accepted = await call("execute-command", { containerId, command: line });
  state.exec = { id: accepted.executionId, tty: false, offsets: { 1: 0, 2: 0 }, done: false };
  setStatus(`${accepted.executionId} · <b>running</b> · ${escapeHtml(line)}`);
}

async function uploadFiles(fileList) {
  const containerId = await ensureSandbox();
  const files = {};
  for (const file of fileList) {
    const bytes = new Uint8Array(await file.arrayBuffer());
    let binary = "";
    for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
    files[file.name] = { content: btoa(binary), encoding: "base64" };
  }
  const { paths } = await call("upload-files", { containerId, files });
  setStatus(`uploaded ${paths.map(escapeHtml).join(", ")}`);
  return paths;
}

async function downloadFile(path) {
  if (!state.containerId) throw new Error("pick a sandbox first");
  const got = await call("download-file", { containerId: state.containerId, path });
  const bytes = Uint8Array.from(atob(got.content), (c) => c.charCodeAt(0));
  const link = document.createElement("a");
  link.href = URL.createObjectURL(new Blob([bytes]));
  link.download = path.split("/").pop() || "download";
  link.click();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  setStatus(`downloaded ${escapeHtml(path)} (${got.size} bytes)`);
}

function setMode(mode) {
  state.mode = mode;
  $("mode-shell").setAttribute("aria-selected", mode === "shell");
  $("mode-command").setAttribute("aria-selected", mode === "command");
  $("command-bar").hidden = mode !== "command";
  fit.fit();
  if (mode === "command") $("command").focus();
}

function setStatus(html) { $("status-text").innerHTML = html; }
function banner(text) { $("banner").hidden = !text; $("banner").textContent = text; }
function escapeHtml(s) { return s.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`); }
const report = (p) => p.catch((err) => banner(err.message));

// --- wiring --------------------------------------------------------------------------

term.onData((data) => {
  const ex = state.exec;
  if (state.mode === "shell" && ex && ex.tty && !ex.done) send("stdin-data", { executionId: ex.id, data });
});
term.onResize(({ cols, rows }) => {
  const ex = state.exec;
  if (ex && ex.tty && !ex.done) send("resize", { executionId: ex.id, cols, rows });
});
let resizeTimer = 0;
window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => fit.fit(), 50); });

$("mode-shell").onclick = () => { setMode("shell"); report(startShell()); };
$("mode-command").onclick = () => setMode("command");
$("new-sandbox").onclick = () => report((async () => { await useSandbox(""); await ensureSandbox(); if (state.mode === "shell") await startShell(); })());
$("sandbox").onchange = (e) => report(useSandbox(e.target.value));
$("upload").onclick = () => $("upload-input").click();
$("download").onclick = () => {
  const path = prompt("File to download (relative to the sandbox's working directory, or absolute):");
  if (path) report(downloadFile(path));
};
$("upload-input").onchange = (e) => {
  const chosen = Array.from(e.target.files);  // clearing the input below empties its live FileList
  e.target.value = "";
  report(uploadFiles(chosen));
};
$("sign-in-form").onsubmit = (e) => {
  e.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("sandboxd-token", token);
  if (state.ws) state.ws.close();
};
$("command-bar").onsubmit = (e) => {
  e.preventDefault();
  const line = $("command").value.trim();
  if (!line) return;
  state.history.push(line);
  state.historyAt = state.history.length;
  $("command").value = "";
  report(runCommand(line));
};
$("command").onkeydown = (e) => {
  if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
  e.preventDefault();
  const h = state.history;
  state.historyAt = Math.max(0, Math.min(h.length, state.historyAt + (e.key === "ArrowUp" ? -1 : 1)));
  $("command").value = h[state.historyAt] || "";
};

// For tests and the curious: the terminal, the state, and a way to drop the connection.
window.sandboxd = {
  term, state, startShell, runCommand,
  dropConnection: () => state.ws && state.ws.close(),
  screen: () => {
    const buf = term.buffer.active, lines = [];
    for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i).translateToString(true));
    return lines.join("\n");
  },
};

term.write("\x1b[2mWelcome to sandboxd. Pick a sandbox (or let one be created), then open a\r\n" +
           "Shell, or switch to Commands to run one command at a time.\x1b[0m\r\n");
setMode(state.mode);
connect();
