// Test peer: a scripted WebSocket client on `ws` 8.x (npm ci in tests/peers first).
//
// Run as `node tests/peers/client.mjs`; the interop tests (tests/interop.rs) drive it over
// stdin/stdout, one command a line, one answer a line (the same protocol as client.py, see
// tests/peers/README.md):
//
//   connect URL [PROTO,PROTO...]  ->  open PROTO|-         or  error MESSAGE
//   send TEXT...                  ->  sent                 (the rest of the line, as text)
//   sendbin HEX                   ->  sent                 (binary; `-` for an empty one)
//   sendsize N                    ->  sent                 (binary of N bytes)
//   recv                          ->  text TEXT...  |  binary HEX|-  |  close CODE REASON...
//   close CODE REASON...          ->  closed CODE REASON... (the server's answering close frame)
//   quit                          ->  (exits)
//
// Every wait is bounded (10 s): a silent server gives `error timeout`. No compression.

import readline from 'node:readline';
import WebSocket from 'ws';

const TIMEOUT = 10_000;

let ws = null;
// Incoming events in order; `waiting` resolves the next `recv` when the queue is empty.
const queue = [];
let waiting = null;
let closeFrame = null; // [code, reason] of the server's close frame, once received

function push(event) {
  if (waiting) {
    const resolve = waiting;
    waiting = null;
    resolve(event);
  } else {
    queue.push(event);
  }
}

function next() {
  if (queue.length) return Promise.resolve(queue.shift());
  return new Promise((resolve) => {
    waiting = resolve;
  });
}

function bounded(promise) {
  let timer;
  const timeout = new Promise((resolve) => {
    timer = setTimeout(() => resolve('error timeout'), TIMEOUT);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function connect(url, protocols) {
  return new Promise((resolve) => {
    const offered = protocols ? protocols.split(',').filter(Boolean) : [];
    const socket = new WebSocket(url, offered, {
      perMessageDeflate: false,
      maxPayload: 64 * 1024 * 1024,
      handshakeTimeout: TIMEOUT,
    });
    socket.binaryType = 'nodebuffer';
    socket.on('open', () => {
      ws = socket;
      resolve(`open ${socket.protocol || '-'}`);
    });
    socket.on('error', (error) => {
      if (ws !== socket) resolve(`error ${error.message}`);
    });
    // Only the open connection reports: a failed attempt's close is not part of the script.
    socket.on('message', (data, isBinary) => {
      if (ws !== socket) return;
      if (isBinary) push(`binary ${data.length ? data.toString('hex') : '-'}`);
      else push(`text ${data.toString('utf8')}`);
    });
    socket.on('close', (code, reason) => {
      if (ws !== socket) return;
      closeFrame = [code, reason.toString('utf8')];
      push(`close ${code} ${closeFrame[1]}`);
    });
  });
}

function send(data) {
  return new Promise((resolve) => {
    // A server that closes first (e.g. 1009 for an oversized message) is not an error here.
    ws.send(data, () => resolve('sent'));
  });
}

async function closeAndWait(code, reason) {
  if (closeFrame === null) {
    const closed = new Promise((resolve) => ws.once('close', resolve));
    ws.close(code, reason);
    await closed;
  }
  return `closed ${closeFrame[0]} ${closeFrame[1]}`;
}

async function run(line) {
  const space = line.indexOf(' ');
  const command = space < 0 ? line : line.slice(0, space);
  const rest = space < 0 ? '' : line.slice(space + 1);
  switch (command) {
    case 'connect': {
      const [url, protocols] = rest.split(' ');
      return connect(url, protocols);
    }
    case 'send':
      return send(rest);
    case 'sendbin':
      return send(rest === '-' ? Buffer.alloc(0) : Buffer.from(rest, 'hex'));
    case 'sendsize':
      return send(Buffer.alloc(Number(rest)));
    case 'recv':
      return next();
    case 'close': {
      const space2 = rest.indexOf(' ');
      const code = Number(space2 < 0 ? rest : rest.slice(0, space2));
      return closeAndWait(code, space2 < 0 ? '' : rest.slice(space2 + 1));
    }
    default:
      return `error unknown command ${command}`;
  }
}

const lines = readline.createInterface({ input: process.stdin, terminal: false });
for await (const line of lines) {
  if (line === 'quit') break;
  let answer;
  try {
    answer = await bounded(run(line));
  } catch (error) {
    answer = `error ${error.message}`;
  }
  process.stdout.write(`${answer}\n`);
}
if (ws) ws.terminate();
process.exit(0);
