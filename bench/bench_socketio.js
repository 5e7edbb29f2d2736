// One `cat FILE` through sandboxd, read by a Node client; prints {bytes, seconds, sha256}.
//   node bench_socketio.js socketio|native HTTP_URL CONTAINER_ID FILE [binary]
// socketio: socket.io-client (websocket transport) on /socket.io/; native: a plain
// WebSocket (the `ws` package) on /sandbox/ws. Both decode every chunk back to bytes.
"use strict";
const crypto = require("node:crypto");
const path = require("node:path");
const modules = path.join(__dirname, "..", "tests", "js", "node_modules");
const { io } = require(path.join(modules, "socket.io-client"));
const WebSocket = require(path.join(modules, "ws"));

const [mode, url, containerId, file, binary] = process.argv.slice(2);
const command = ["cat", file];
const hash = crypto.createHash("sha256");
let bytes = 0;
let start;

function chunk(d) {
  const data = Buffer.isBuffer(d.data) ? d.data : Buffer.from(d.data, d.encoding === "base64" ? "base64" : "utf8");
  if (d.type === "stdout") {
    bytes += data.length;
    hash.update(data);
  }
}

function done() {
  const seconds = (performance.now() - start) / 1000;
  console.log(JSON.stringify({ bytes, seconds, sha256: hash.digest("hex") }));
  process.exit(0);
}

if (mode === "socketio") {
  const socket = io(url, { transports: ["websocket"] });
  socket.on("connect", async () => {
    if (binary) await socket.emitWithAck("configure-session", { binaryOutput: true });
    socket.on("execution-output", chunk);
    socket.on("execution-complete", done);
    start = performance.now();
    socket.emit("execute-command", { containerId, command });
  });
} else {
  const ws = new WebSocket(`${url.replace("http", "ws")}/sandbox/ws`);
  ws.on("open", () => {
    start = performance.now();
    ws.send(JSON.stringify({ event: "execute-command", data: { containerId, command } }));
  });
  ws.on("message", (frame) => {
    const m = JSON.parse(frame.toString());
    if (m.event === "execution-output") chunk(m.data);
    else if (m.event === "execution-complete") done();
  });
}
