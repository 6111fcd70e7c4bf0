// Benchmark peer (benches/server.rs): the Node `ws` server a user would otherwise write for
// what `unisock serve` does, so that both can be measured doing the same job in one run.
//
// Run as `node benches/server/broadcast_server.mjs [port]` (0 or absent = ephemeral). `ws`
// comes from tests/peers/node_modules (`npm ci` there first). Prints one line
// `LISTENING <port>` once it accepts connections.
//
// - `/echo`: every text and binary message comes back as is;
// - `/rooms/<room>[?notify_self=true]`: every message goes to every other member of the room
//   (and to the sender too with notify_self=true), the way the `ws` README broadcasts:
//   `client.send(data, { binary })` for each member. Like most Node servers, it never drops a
//   slow member: what a member cannot take yet waits in memory (`bufferedAmount`).
// - listens on 127.0.0.1 with a backlog of 1024 (as `unisock serve`), no compression,
//   16 MiB max message (as `unisock serve`'s default), no pings;
// - SIGTERM / SIGINT: close every client with 1001 and exit within 1 s.

import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(new URL('../../tests/peers/package.json', import.meta.url));
const { WebSocketServer } = require('ws');

const ROOM_PATH = /^\/rooms\/([A-Za-z0-9_.-]{1,64})$/;
const port = process.argv[2] ? Number(process.argv[2]) : 0;

const wss = new WebSocketServer({
  noServer: true,
  perMessageDeflate: false,
  maxPayload: 16 * 1024 * 1024,
  clientTracking: true,
});

/** @type {Map<string, Set<import('ws').WebSocket>>} */
const rooms = new Map();

function join(ws, name, notifySelf) {
  let room = rooms.get(name);
  if (!room) {
    room = new Set();
    rooms.set(name, room);
  }
  room.add(ws);
  ws.on('message', (data, isBinary) => {
    for (const member of room) {
      if ((member !== ws || notifySelf) && member.readyState === 1) {
        member.send(data, { binary: isBinary });
      }
    }
  });
  ws.on('close', () => {
    room.delete(ws);
    if (room.size === 0 && rooms.get(name) === room) rooms.delete(name);
  });
}

function echo(ws) {
  ws.on('message', (data, isBinary) => ws.send(data, { binary: isBinary }));
}

const server = http.createServer((req, res) => {
  res.writeHead(426, { 'Content-Type': 'text/plain', Connection: 'close' });
  res.end('WebSocket upgrade required\n');
});

server.on('upgrade', (req, socket, head) => {
  socket.on('error', () => {});
  const url = new URL(req.url ?? '/', 'http://localhost');
  const room = ROOM_PATH.exec(url.pathname);
  if (url.pathname !== '/echo' && !room) {
    socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  wss.handleUpgrade(req, socket, head, (ws) => {
    ws.on('error', () => {}); // abrupt disconnects are normal under load
    if (room) join(ws, room[1], url.searchParams.get('notify_self') === 'true');
    else echo(ws);
  });
});

function shutdown() {
  for (const ws of wss.clients) ws.close(1001, 'server shutting down');
  wss.close();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 1000).unref();
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);

server.listen({ port, host: '127.0.0.1', backlog: 1024 }, () => {
  process.stdout.write(`LISTENING ${server.address().port}\n`);
});
