// sandboxd web terminal: the terminal tabs. A ShellTab holds at most one interactive
// shell (a tty execution) and re-attaches to it after a reconnect or a reload; a
// CommandsTab runs one command per line, keeps each command's output with its own status
// line, and sends what is typed in it to the command that runs in front.
"use strict";

const SHELL = ["/bin/sh", "-c", "if command -v bash >/dev/null 2>&1; then exec bash; else exec sh; fi"];
const TERM_OPTIONS = {
  cursorBlink: true, scrollback: 20000,
  // lineHeight 1 clips the glyphs that hang below the baseline: at 14 px an underscore
  // vanished (`snake_case` read `snake case`). 1.2 leaves them room at every size.
  lineHeight: 1.2,
  fontFamily: '"JetBrains Mono", "Fira Code", "DejaVu Sans Mono", Menlo, monospace',
  theme: { background: "#0f1117", foreground: "#d7dae0", cursor: "#5fb3ff", selectionBackground: "#2c3e57" },
};
const DIM = "\x1b[2m", RESET = "\x1b[0m";
const STATUS_COLOUR = { success: "\x1b[32m", running: "" };

class TerminalTab {
  constructor(app, key, kind, title) {
    this.app = app; this.key = key; this.kind = kind; this.title = title;
    this.status = "";
    this.el = document.createElement("div");
    this.el.className = "term inactive";
    document.getElementById("terminals").appendChild(this.el);
    this.term = new Terminal({ ...TERM_OPTIONS, fontSize: app.fontSize });
    this.fit = new FitAddon.FitAddon();
    this.term.loadAddon(this.fit);
    this.term.open(this.el);
    this.term.onSelectionChange(() => app.copySelection(this.term));
    this.button = document.createElement("button");
    this.button.className = "tab";
    this.button.setAttribute("role", "tab");
    this.button.dataset.key = key;
    this.button.dataset.kind = kind;
    this.button.innerHTML = `<span class="title"></span>`;
    this.button.querySelector(".title").textContent = title;
    this.button.onclick = () => app.activate(this, { start: true });
    if (kind === "commands") document.getElementById("tabs").appendChild(this.button);
    else document.getElementById("new-shell").before(this.button);
  }

  show(on) {
    this.el.classList.toggle("inactive", !on);
    this.button.setAttribute("aria-selected", on);
    if (on) this.refit();
  }

  detach() {}
  refit() { try { this.fit.fit(); } catch (err) { /* not laid out yet */ } }
  setFontSize(px) { this.term.options.fontSize = px; this.refit(); }
  setStatus(html) { this.status = html; if (this.app.active === this) this.app.showStatus(html); }
  dispose() { this.term.dispose(); this.el.remove(); this.button.remove(); }

  screen() {
    const buf = this.term.buffer.active, lines = [];
    for (let i = 0; i < buf.length; i++) lines.push(buf.getLine(i).translateToString(true));
    return lines.join("\n");
  }
}

class ShellTab extends TerminalTab {
  constructor(app, key, title, exec = null) {
    super(app, key, "shell", title);
    const close = document.createElement("span");
    close.className = "close"; close.textContent = "×"; close.title = "Close this tab (ends its shell)";
    close.onclick = (e) => { e.stopPropagation(); app.closeTab(this); };
    this.button.appendChild(close);
    this.exec = exec;  // {id, containerId, offsets: {1: n, 2: n}, done}
    this.starting = null;
    // Keys typed while the connection is re-established wait until the shell is attached
    // again (sent earlier, the daemon would not know this new session may write to it).
    this.attached = false;
    this.typedAhead = "";
    this.term.onData((data) => this.type(data));
    this.term.onResize(({ cols, rows }) => { if (this.running() && this.attached) app.conn.send("resize", { executionId: this.exec.id, cols, rows }); });
  }

  running() { return !!this.exec && !this.exec.done; }

  type(data) {
    if (!this.running()) return;
    if (!this.attached) { this.typedAhead = (this.typedAhead + data).slice(-4096); return; }
    this.app.conn.send("stdin-data", { executionId: this.exec.id, data });
  }

  detach() { this.attached = false; }

  /** Clicked or made active: the tab's shell if it still runs, else a new one. */
  open() {
    if (this.running()) { this.term.focus(); return Promise.resolve(); }
    if (!this.starting) this.starting = this.start().finally(() => { this.starting = null; });
    return this.starting;
  }

  async start() {
    const containerId = await this.app.ensureSandbox();
    if (this.exec) this.term.write(`\r\n${DIM}[new shell in ${containerId.slice(0, 12)}]${RESET}\r\n`);
    const accepted = await this.app.conn.call("execute-command", {
      containerId, command: SHELL, tty: true, cols: this.term.cols, rows: this.term.rows,
    });
    this.exec = { id: accepted.executionId, containerId, offsets: { 1: 0, 2: 0 }, done: false };
    this.attached = true;
    this.app.track(this.exec.id, this);
    this.setStatus(`${accepted.executionId} · <b>running</b> · shell`);
    this.app.save();
    if (this.app.active === this) this.term.focus();
  }

  /** After a reconnect or a reload: follow the shell again from where the screen is. */
  async resume() {
    if (!this.running()) return;
    const ex = this.exec;
    this.app.track(ex.id, this);
    try {
      const attached = await this.app.conn.call("attach-execution", {
        executionId: ex.id, since: { stdout: ex.offsets[1], stderr: ex.offsets[2] } });
      this.setStatus(`${ex.id} · <b>${attached.status}</b> · shell`);
      this.attached = true;
      this.app.conn.send("resize", { executionId: ex.id, cols: this.term.cols, rows: this.term.rows });
      const ahead = this.typedAhead;
      this.typedAhead = "";
      if (ahead) this.type(ahead);
    } catch (err) {
      if (err.code !== "NOT_FOUND") throw err;
      ex.done = true;  // gone (pruned, or another daemon): nothing to follow
      this.term.write(`\r\n${DIM}[the shell ${ex.id} is gone]${RESET}\r\n`);
    }
  }

  /** End the shell (tab closed, sandbox switched): hang up, then stop it for sure. */
  hangUp(why) {
    if (!this.running()) return;
    const id = this.exec.id;
    this.exec.done = true;
    this.app.untrack(id);
    this.app.conn.call("kill", { executionId: id, signal: "HUP" })
      .then(() => this.app.conn.call("kill", { executionId: id }))
      .catch(() => {});  // already ended; or offline, and the daemon's grace ends it
    this.term.write(`\r\n${DIM}[shell ended: ${why}]${RESET}\r\n`);
    this.setStatus(`${id} · ${why}`);
  }

  onOutput(stream, seq, bytes) {
    const fresh = unseen(this.exec.offsets[stream], seq, bytes);
    if (!fresh) return;
    this.exec.offsets[stream] += fresh.length;
    this.term.write(fresh);
  }

  onComplete(data) {
    this.exec.done = true;
    this.app.untrack(data.executionId);
    const code = data.exitCode === null ? "—" : data.exitCode;
    this.setStatus(statusLine(data, "shell"));
    this.term.write(`\r\n${DIM}[shell ended: ${data.status}, exit ${code}]${RESET}\r\n`);
    this.app.save();
  }

  saved() {
    const ex = this.running() ? { id: this.exec.id, containerId: this.exec.containerId, offset: this.exec.offsets[1] } : null;
    return { key: this.key, title: this.title, exec: ex };
  }
}

class CommandsTab extends TerminalTab {
  constructor(app) {
    super(app, "commands", "commands", "Commands");
    this.runs = new Map();   // execution id -> {n, line, id, offsets, done, interrupts}
    this.count = 0;
    this.front = null;       // the run that gets typed stdin, Stop and Ctrl-C
    this.lastWriter = null;  // n of the command whose output is on screen last
    this.atLineStart = true;
    this.typed = "";
    this.term.onData((data) => this.onKeys(data));
  }

  async run(line) {
    const containerId = await this.app.ensureSandbox();
    const n = ++this.count;
    this.write(`\x1b[1;36m$ ${line}${RESET}${DIM}  #${n}${RESET}\r\n`, n);
    let accepted;
    try {
      accepted = await this.app.conn.call("execute-command", {
        containerId, command: line, stdin: true, env: { TERM: "xterm-256color" } });
    } catch (err) {
      this.write(`\x1b[31m[#${n} not started: ${err.message}]${RESET}\r\n`, null);
      throw err;
    }
    const run = { n, line, id: accepted.executionId, offsets: { 1: 0, 2: 0 }, done: false, interrupts: 0 };
    this.runs.set(run.id, run);
    this.app.track(run.id, this);
    this.setFront(run);
  }

  setFront(run) {
    this.front = run;
    this.app.commandRunning(run);
    if (run) this.setStatus(`${run.id} · <b>running</b> · #${run.n} ${escapeHtml(run.line)} · typing here goes to its stdin (Ctrl-D ends it, Ctrl-C stops it)`);
  }

  /** Write text on behalf of command n, with a header line when another command wrote last. */
  write(text, n) {
    if (n !== null && this.lastWriter !== n) {
      const run = [...this.runs.values()].find((r) => r.n === n);
      if (run) this.term.write(`${this.atLineStart ? "" : "\r\n"}${DIM}── #${n} ${run.line} ──${RESET}\r\n`);
      else if (!this.atLineStart) this.term.write("\r\n");
      this.atLineStart = true;
    }
    this.lastWriter = n;
    if (!text.length) return;
    this.term.write(text);
    this.atLineStart = (typeof text === "string" ? text.charCodeAt(text.length - 1) : text[text.length - 1]) === 10;
  }

  onOutput(stream, seq, bytes, id) {
    const run = this.runs.get(id);
    const fresh = unseen(run.offsets[stream], seq, bytes);
    if (!fresh) return;
    run.offsets[stream] += fresh.length;
    if (stream === 2) { this.write("", run.n); this.term.write("\x1b[31m"); this.write(crlf(fresh), run.n); this.term.write(RESET); }
    else this.write(crlf(fresh), run.n);
  }

  onComplete(data) {
    const run = this.runs.get(data.executionId);
    run.done = true;
    this.app.untrack(run.id);
    const code = data.exitCode === null ? "—" : data.exitCode;
    const colour = STATUS_COLOUR[data.status] ?? "\x1b[31m";
    const why = data.reason ? ` · ${data.reason}` : "";
    if (!this.atLineStart) this.term.write("\r\n");
    this.term.write(`${colour}[#${run.n} ${data.status}, exit ${code}, ${data.durationMs} ms${why}]${RESET}\r\n`);
    this.atLineStart = true;
    this.lastWriter = null;
    this.setStatus(statusLine(data, `#${run.n} ${escapeHtml(run.line)}`));
    if (this.front === run) {
      const still = [...this.runs.values()].filter((r) => !r.done);
      this.setFront(still.length ? still[still.length - 1] : null);
    }
  }

  /** Stop: first time Ctrl-C is an interrupt (SIGINT), then TERM and KILL. */
  stop(interrupt) {
    const run = this.front;
    if (!run) return;
    const signal = interrupt && run.interrupts++ === 0 ? "INT" : undefined;
    this.app.conn.call("kill", signal ? { executionId: run.id, signal } : { executionId: run.id }).catch((err) => this.app.banner(err.message));
  }

  onKeys(data) {
    const run = this.front;
    if (!run) return;
    for (const piece of data.match(/\x1b(\[[0-9;?]*[ -\/]*[@-~]|O.|.)?|[\s\S]/gu) || []) {
      if (piece === "\x03") { this.write("^C\r\n", run.n); this.stop(true); }
      else if (piece === "\x04") {
        if (this.typed) this.sendStdin(run, this.typed);
        this.typed = "";
        this.write("^D\r\n", run.n);
        this.app.conn.call("stdin-close", { executionId: run.id }).catch(() => {});
      } else if (piece === "\r" || piece === "\n") {
        this.sendStdin(run, this.typed + "\n");
        this.typed = "";
        this.write("\r\n", run.n);
      } else if (piece === "\x7f" || piece === "\b") {
        if (this.typed) { this.typed = this.typed.slice(0, -1); this.write("\b \b", run.n); }
      } else if (piece >= " " && piece !== "\x7f") {
        this.typed += piece;
        this.write(piece, run.n);
      }  // other control keys and escape sequences (arrows...) have no meaning here
    }
  }

  sendStdin(run, text) {
    if (!this.app.conn.send("stdin-data", { executionId: run.id, data: text })) this.app.banner("offline: typed text not sent");
  }

  async resume() {
    for (const run of this.runs.values()) {
      if (run.done) continue;
      this.app.track(run.id, this);
      await this.app.conn.call("attach-execution", { executionId: run.id, since: { stdout: run.offsets[1], stderr: run.offsets[2] } });
    }
  }
}

function statusLine(data, what) {
  const code = data.exitCode === null ? "—" : data.exitCode;
  const why = data.reason ? ` · ${escapeHtml(data.reason)}` : "";
  return `${data.executionId} · <b class="${data.status}">${data.status}</b> · exit ${code} · ${data.durationMs} ms · ${what}${why}`;
}

/** Plain (non-tty) output on a terminal: each \n needs a \r. */
function crlf(bytes) {
  let count = 0;
  for (const b of bytes) if (b === 10) count++;
  if (!count) return bytes;
  const out = new Uint8Array(bytes.length + count);
  let j = 0;
  for (const b of bytes) { if (b === 10) out[j++] = 13; out[j++] = b; }
  return out;
}

function escapeHtml(s) { return String(s).replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`); }
