// sandboxd web terminal: files. Upload from the browser, and Download through a picker
// that lists the sandbox's directories with a small helper command (the protocol has no
// directory listing; the helper is an ordinary, short execution in the sandbox).
"use strict";

const LIST_DIR = 'cd -- "$1" || exit 2; pwd; for f in * .[!.]* ..?*; do ' +
  'if [ -d "$f" ]; then echo "d $f"; elif [ -e "$f" ] || [ -L "$f" ]; then echo "f $f"; fi; done';

const files = {
  async upload(fileList) {
    const containerId = await app.ensureSandbox();
    const payload = {};
    for (const file of fileList) {
      const bytes = new Uint8Array(await file.arrayBuffer());
      let binary = "";
      for (let i = 0; i < bytes.length; i += 0x8000) binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
      payload[file.name] = { content: btoa(binary), encoding: "base64" };
    }
    const { paths } = await app.conn.call("upload-files", { containerId, files: payload });
    app.showStatus(`uploaded ${paths.map(escapeHtml).join(", ")}`);
  },

  async download(path) {
    const got = await app.conn.call("download-file", { containerId: app.containerId, path });
    const bytes = Uint8Array.from(atob(got.content), (c) => c.charCodeAt(0));
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([bytes]));
    link.download = path.split("/").pop() || "download";
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    app.showStatus(`downloaded ${escapeHtml(path)} (${got.size} bytes)`);
  },

  /** Run a short helper command and collect its stdout (for the file picker). */
  async runQuietly(command) {
    const accepted = await app.conn.call("execute-command", { containerId: app.containerId, command });
    return new Promise((resolve) => {
      const chunks = [];
      app.track(accepted.executionId, {
        onOutput: (stream, seq, bytes) => { if (stream === 1) chunks.push(bytes.slice()); },
        onComplete: (data) => {
          app.untrack(data.executionId);
          resolve({ exitCode: data.exitCode, stdout: new TextDecoder().decode(concat(chunks)) });
        },
      });
    });
  },

  async listDirectory(dir) {
    const { exitCode, stdout } = await this.runQuietly(["/bin/sh", "-c", LIST_DIR, "sh", dir]);
    if (exitCode !== 0) throw new Error(`cannot open ${dir}`);
    const [where, ...rest] = stdout.split("\n").filter(Boolean);
    const entries = rest.map((l) => ({ dir: l[0] === "d", name: l.slice(2) }))
      .sort((a, b) => (b.dir - a.dir) || a.name.localeCompare(b.name));
    return { where, entries };
  },

  shown: 0,
  async showDirectory(dir) {
    const list = $("download-list");
    const generation = ++this.shown;
    list.textContent = "…";
    const { where, entries } = await this.listDirectory(dir);
    if (generation !== this.shown) return;  // another directory was asked for meanwhile
    $("download-where").textContent = where;
    list.textContent = "";
    const join = (name) => (where === "/" ? "" : where) + "/" + name;
    const items = where === "/" ? entries : [{ dir: true, name: "..", path: where.replace(/\/[^/]*$/, "") || "/" }, ...entries];
    for (const entry of items) {
      const li = document.createElement("li");
      const button = document.createElement("button");
      button.type = "button";
      button.className = entry.dir ? "dir" : "file";
      button.textContent = entry.dir ? `${entry.name}/` : entry.name;
      const path = entry.path || join(entry.name);
      button.onclick = () => (entry.dir ? report(this.showDirectory(path)) : ($("download-path").value = path));
      if (!entry.dir) button.ondblclick = () => { $("download-path").value = path; $("download-go").click(); };
      li.appendChild(button);
      list.appendChild(li);
    }
  },
};

function concat(chunks) {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}
