// sandboxd web terminal: the page. One connection (conn.js), the sandbox picker, the
// terminal tabs (tabs.js), files, and what survives a reload: the sandbox is in the
// address bar, and this browser tab's shells are in sessionStorage, so a reload
// re-attaches to them. A tab closed for good leaves its shells to the daemon, which
// stops them after `limits.detached_tty_grace_seconds`.
"use strict";

if (typeof Terminal === "undefined") {
  document.getElementById("banner").hidden = false;
  document.getElementById("banner-text").textContent = "xterm.js is not installed on the daemon: run scripts/setup.sh";
  throw new Error("xterm.js missing");
}

const $ = (id) => document.getElementById(id);
const LAYOUT_KEY = "sandboxd-layout", ALIVE_KEY = "sandboxd-alive";
const REPLAY_BYTES = 256 * 1024;  // after a reload, a shell's screen is rebuilt from this much output

const app = {
  conn: null, tabs: [], active: null, user: null, nextShell: 1,
  containerId: "", fontSize: Number(localStorage.getItem("sandboxd-font-size")) || 14,
  owners: new Map(),   // execution id -> the tab (or helper) that shows it
  bannerTimer: 0, bannerMs: 8000,

  // --- execution routing --------------------------------------------------------
  track(id, owner) { this.owners.set(id, owner); },
  untrack(id) { this.owners.delete(id); },

  onEvent(event, data) {
    if (event === "error") return this.banner(`${data.code}: ${data.message}`);
    const owner = data.executionId && this.owners.get(data.executionId);
    if (!owner) return;
    if (event === "execution-complete") owner.onComplete(data);
    else if (event === "warning" && owner.term) owner.term.write(`\r\n\x1b[33m[${data.code}: ${data.message}]\x1b[0m\r\n`);
  },

  onOutput(frame) {
    const owner = this.owners.get(frame.id);
    if (owner) owner.onOutput(frame.stream, frame.seq, frame.bytes, frame.id);
  },

  // --- connection ---------------------------------------------------------------
  async onOpen(first) {
    setConn("connected", "connected");
    this.banner("");
    try {
      const me = await this.conn.call("configure-session", { binaryOutput: true });
      this.showUser(me.user);
      await this.refreshSandboxes();
      if (this.containerId) await this.conn.call("join-container", { containerId: this.containerId });
      for (const tab of this.tabs) await tab.resume();
      if (first && this.containerId && this.active.kind === "shell") await this.active.open();
    } catch (err) { this.banner(err.message); }
  },

  onClose(wasConnected) {
    for (const tab of this.tabs) tab.detach();
    if (wasConnected) return setConn("offline", "reconnecting…");
    setConn("unauthorized", "cannot connect (token needed?)");
    $("sign-in-form").hidden = false;
  },

  // --- sandboxes ------------------------------------------------------------------
  async refreshSandboxes() {
    const { containers } = await this.conn.call("list-containers");
    const select = $("sandbox");
    select.innerHTML = '<option value="">—</option>';
    for (const c of containers) {
      const opt = document.createElement("option");
      opt.value = c.containerId;
      opt.textContent = `${c.containerId.slice(0, 12)} · ${c.image}`;
      select.appendChild(opt);
    }
    if (this.containerId && !containers.some((c) => c.containerId === this.containerId)) {
      this.banner(`sandbox ${this.containerId.slice(0, 12)} is gone`);
      this.setSandbox("");
    }
    select.value = this.containerId;
  },

  /** Move the page to another sandbox: the shells of the old one end, and the active
   * shell tab gets a new shell in the new one (other shell tabs when opened). */
  async useSandbox(id, { openShell = true } = {}) {
    const old = this.containerId;
    if (old === id) return;
    for (const tab of this.shellTabs()) tab.hangUp(`switched to sandbox ${id ? id.slice(0, 12) : "—"}`);
    this.setSandbox(id);
    if (old) await this.conn.call("leave-container", { containerId: old }).catch(() => {});
    if (id) await this.conn.call("join-container", { containerId: id });
    if (openShell && id && this.active.kind === "shell") await this.active.open();
  },

  setSandbox(id) {
    this.containerId = id;
    $("sandbox").value = id;
    const url = new URL(location.href);
    if (id) url.searchParams.set("sandbox", id); else url.searchParams.delete("sandbox");
    history.replaceState(null, "", url);
    this.save();
  },

  async ensureSandbox() {
    if (!this.containerId) {
      const image = $("image").value.trim();
      const created = await this.conn.call("create-container", image ? { image } : {});
      await this.refreshSandboxes();
      await this.useSandbox(created.containerId, { openShell: false });  // the caller opens what it needs
    }
    return this.containerId;
  },

  // --- tabs -----------------------------------------------------------------------
  shellTabs() { return this.tabs.filter((t) => t.kind === "shell"); },

  addShellTab(saved) {
    const key = saved ? saved.key : `sh${this.nextShell}`;
    const tab = new ShellTab(this, key, saved ? saved.title : `Shell ${this.nextShell}`, saved && saved.exec);
    this.nextShell = Math.max(this.nextShell, (Number(key.slice(2)) || 0) + 1);
    this.tabs.splice(this.shellTabs().length, 0, tab);
    return tab;
  },

  activate(tab, { start = false } = {}) {
    if (this.active && this.active !== tab) this.active.show(false);
    this.active = tab;
    tab.show(true);
    this.showStatus(tab.status || "no execution yet");
    $("command-bar").hidden = tab.kind !== "commands";
    tab.refit();
    this.save();
    if (tab.kind === "commands") { $("command").focus(); this.commandRunning(tab.front); return; }
    tab.term.focus();
    if (start) report(tab.open());
  },

  closeTab(tab) {
    tab.hangUp("tab closed");
    this.tabs = this.tabs.filter((t) => t !== tab);
    tab.dispose();
    if (!this.shellTabs().length) this.addShellTab();
    if (this.active === tab) this.activate(this.shellTabs()[0]);
    this.save();
  },

  commandRunning(run) { $("stop").disabled = !run; },

  save() {
    if (!this.active) return;
    sessionStorage.setItem(LAYOUT_KEY, JSON.stringify({
      containerId: this.containerId, active: this.active.key, shells: this.shellTabs().map((t) => t.saved()),
    }));
  },

  restore(containerId) {
    let saved = null;
    try { saved = JSON.parse(sessionStorage.getItem(LAYOUT_KEY) || "null"); } catch (err) { saved = null; }
    // A duplicated browser tab starts with a copy of this sessionStorage while the
    // original still runs (a reload has been through pagehide): it must not share its shells.
    const duplicate = sessionStorage.getItem(ALIVE_KEY) === "1";
    sessionStorage.setItem(ALIVE_KEY, "1");
    const shells = (saved && saved.shells) || [{ key: "sh1", title: "Shell 1", exec: null }];
    for (const s of shells) {
      const ex = !duplicate && s.exec && s.exec.containerId === containerId
        ? { id: s.exec.id, containerId, offsets: { 1: Math.max(0, s.exec.offset - REPLAY_BYTES), 2: 0 }, done: false }
        : null;  // a shell of another sandbox: left to the daemon's grace
      this.addShellTab({ key: s.key, title: s.title, exec: ex });
    }
    this.tabs.push(new CommandsTab(this));
    return this.tabs.find((t) => saved && t.key === saved.active) || this.tabs[0];
  },

  // --- the page's own bits ----------------------------------------------------------
  showUser(user) {
    this.user = user;
    $("user").textContent = user;
    $("user").title = `signed in as ${user} (click to use another token)`;
    $("sign-in-form").hidden = true;
  },

  showStatus(html) { $("status-text").innerHTML = html; },

  /** An error the user can dismiss; it also clears itself after a while. */
  banner(text) {
    clearTimeout(this.bannerTimer);
    $("banner").hidden = !text;
    $("banner-text").textContent = text;
    if (text) this.bannerTimer = setTimeout(() => this.banner(""), this.bannerMs);
  },

  setFontSize(px) {
    this.fontSize = Math.max(9, Math.min(28, px));
    localStorage.setItem("sandboxd-font-size", String(this.fontSize));
    for (const tab of this.tabs) tab.setFontSize(this.fontSize);
  },

  copyTimer: 0,
  /** Copy on select, as terminals on X do. */
  copySelection(term) {
    clearTimeout(this.copyTimer);
    this.copyTimer = setTimeout(() => {
      const text = term.getSelection();
      if (!text) return;
      const done = () => this.showStatus(`copied ${text.length} characters`);
      const fallback = () => {
        const area = document.createElement("textarea");
        area.value = text; document.body.appendChild(area); area.select();
        document.execCommand("copy"); area.remove(); done();
        term.focus();
      };
      if (navigator.clipboard && navigator.clipboard.writeText) navigator.clipboard.writeText(text).then(done, fallback);
      else fallback();
    }, 150);
  },
};

function setConn(state, text) { $("conn").dataset.state = state; $("conn-text").textContent = text; }
const report = (p) => p.catch((err) => app.banner(err.message));

// --- start-up: token and sandbox from the address bar ------------------------------

const params = new URLSearchParams(location.search);
let token = params.get("token") || sessionStorage.getItem("sandboxd-token") || "";
if (params.has("token")) {  // keep it out of the history and of anything copied from the bar
  sessionStorage.setItem("sandboxd-token", token);
  const url = new URL(location.href);
  url.searchParams.delete("token");
  history.replaceState(null, "", url);
}
$("token").value = token;
app.conn = new Connection({
  url: () => {
    const url = new URL("/sandbox/ws", location.href);
    url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (token) url.searchParams.set("token", token);
    return url.toString();
  },
  onOpen: (isFirst) => app.onOpen(isFirst),
  onClose: (was) => app.onClose(was),
  onEvent: (event, data) => app.onEvent(event, data),
  onOutput: (frame) => app.onOutput(frame),
});
app.containerId = params.get("sandbox") || "";
const first = app.restore(app.containerId);
app.setSandbox(app.containerId);
app.activate(first);

// --- wiring ------------------------------------------------------------------------

let resizeTimer = 0;
window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(() => app.tabs.forEach((t) => t.refit()), 50); });
window.addEventListener("pagehide", () => { app.save(); sessionStorage.removeItem(ALIVE_KEY); });
window.addEventListener("pageshow", () => sessionStorage.setItem(ALIVE_KEY, "1"));
$("new-shell").onclick = () => app.activate(app.addShellTab(), { start: true });
$("new-sandbox").onclick = () => report((async () => {
  await app.useSandbox("");
  await app.ensureSandbox();
  if (app.active.kind === "shell") await app.active.open();
})());
$("sandbox").onchange = (e) => report(app.useSandbox(e.target.value));
$("upload").onclick = () => $("upload-input").click();
$("upload-input").onchange = (e) => {
  const chosen = Array.from(e.target.files);  // clearing the input below empties its live FileList
  e.target.value = "";
  report(files.upload(chosen));
};
$("download").onclick = () => {
  if (!app.containerId) return app.banner("pick a sandbox first");
  $("download-path").value = "";
  $("download-dialog").returnValue = "";  // Escape keeps the last value otherwise
  $("download-dialog").showModal();
  report(files.showDirectory("."));
};
$("download-dialog").onclose = () => {
  const path = $("download-path").value.trim();
  if ($("download-dialog").returnValue === "ok" && path) report(files.download(path));
  app.active.term.focus();
};
$("font-smaller").onclick = () => app.setFontSize(app.fontSize - 1);
$("font-larger").onclick = () => app.setFontSize(app.fontSize + 1);
$("banner-close").onclick = () => app.banner("");
$("user").onclick = () => { $("sign-in-form").hidden = !$("sign-in-form").hidden; if (!$("sign-in-form").hidden) $("token").focus(); };
$("sign-in-form").onsubmit = (e) => {
  e.preventDefault();
  token = $("token").value.trim();
  sessionStorage.setItem("sandboxd-token", token);
  app.conn.reconnectNow();
};
const commands = app.tabs.find((t) => t.kind === "commands");
const history_ = { lines: [], at: 0 };
$("command-bar").onsubmit = (e) => {
  e.preventDefault();
  const line = $("command").value.trim();
  if (!line) return;
  history_.lines.push(line);
  history_.at = history_.lines.length;
  $("command").value = "";
  report(commands.run(line));
};
$("stop").onclick = () => commands.stop(false);
$("command").onkeydown = (e) => {
  if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
  e.preventDefault();
  const h = history_.lines;
  history_.at = Math.max(0, Math.min(h.length, history_.at + (e.key === "ArrowUp" ? -1 : 1)));
  $("command").value = h[history_.at] || "";
};

// For tests and the curious: the page's state, the active terminal, and a way to drop
// the connection.
window.sandboxd = {
  app,
  get term() { return app.active.term; },
  dropConnection: () => app.conn.drop(),
  screen: () => app.active.screen(),
};

if (!app.containerId) {
  app.active.term.write("\x1b[2mWelcome to sandboxd. Pick a sandbox (or let one be created), then open a " +
    "Shell, or switch to Commands to run one command at a time.\x1b[0m\r\n");
}
setConn("connecting", "connecting…");
app.conn.connect();
