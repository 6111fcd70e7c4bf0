// Test peer: WebSocket echo server on `ws` 8.x (npm ci in tests/peers first).
//
// Run as `node tests/peers/echo_server.mjs [port]`.
// The contract (shared with echo_server.py and the Rust echo_server example)
// is in tests/peers/README.md. In short:
//
// - listens on 127.0.0.1:<port> (0 or absent = ephemeral), prints one line
//   `LISTENING <port>` when ready;
// - `/status/<code>` rejects the handshake with that HTTP status;
// - any other path echoes text as text and binary as binary, in order;
// - subprotocol: the first offered one in SUPPORTED, else none;
// - text `!close <code> <reason...>` makes the server close with that code;
// - a client-initiated close is answered with the same code and reason
//   (ws does that by itself);
// - max message 64 MiB, no compression, no server pings;
// - SIGTERM / SIGINT exit cleanly with status 0.

import http from 'node:http';
import { WebSocketServer } from 'ws';

const SUPPORTED = new Set(['chat', 'superchat', 'unisock.test']);
const MAX_SIZE = 64 * 1024 * 1024;
const STATUS_PATH = /^\/status\/(\d{3})$/;
const CLOSE_CMD = /^!close (\d+)(?: ([\s\S]*))?$/;

const port = process.argv[2] ? Number(process.argv[2]) : 0;

const wss = new WebSocketServer({
  noServer: true, // we route upgrades ourselves so /status/<code> can reject
  perMessageDeflate: false,
  maxPayload: MAX_SIZE,
  // `offered` is a Set in the client's header order: pick the first we know.
  handleProtocols(offered) {
    for (const proto of offered) {
      if (SUPPORTED.has(proto)) return proto;
    }
    return false; // no subprotocol, connection still accepted
  },
});

wss.on('connection', (ws) => {
  ws.on('message', (data, isBinary) => {
    if (!isBinary) {
      const m = CLOSE_CMD.exec(data.toString('utf8'));
      if (m) {
        ws.close(Number(m[1]), m[2] ?? '');
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
  ws.on('error', () => {}); // abrupt client disconnects are normal in tests
});

const server = http.createServer((req, res) => {
  // Plain HTTP (no upgrade): tell the client this is a WebSocket endpoint.
  res.writeHead(426, { 'Content-Type': 'text/plain', Connection: 'close' });
  res.end('WebSocket upgrade required\n');
});

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => {});
  const path = (req.url ?? '/').split('?')[0];
  const m = STATUS_PATH.exec(path);
  const code = m ? Number(m[1]) : 0;
  if (code >= 200 && code <= 599) {
    const body = `rejected with status ${code}\n`;
    const phrase = http.STATUS_CODES[code] ?? 'Unknown';
    socket.end(
      `HTTP/1.1 ${code} ${phrase}\r\n` +
        'Connection: close\r\n' +
        'Content-Type: text/plain; charset=utf-8\r\n' +
        `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n` +
        body,
    );
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
});

function shutdown() {
  // Say goodbye (1001) like the Python peer, but exit within 1 s regardless.
  for (const ws of wss.clients) ws.close(1001, '');
  wss.close();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
