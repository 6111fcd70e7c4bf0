// Compiled with `tsc --noEmit --strict` against pkg/unisock.d.ts (never run): what a
// TypeScript user writes must type-check with precise types, and misuse must not.
// Lines marked @ts-expect-error must fail to compile; tsc reports them if they do not.

import init, {
  SharedSocket,
  Socket,
  type DisconnectInfo,
  type SendData,
  type SharedSocketCloseEvent,
  type SharedSocketOptions,
  type SocketCloseEvent,
  type SocketData,
  type SocketMessageEvent,
  type SocketOptions,
  type SocketReadyState,
  type UnisockError,
  type UnisockErrorKind,
} from "../../pkg/unisock.js";

export async function example(): Promise<void> {
  await init();

  // Drop-in: the WebSocket constructor forms.
  const plain = new Socket("ws://127.0.0.1:9001/echo");
  const withProtocol = new Socket("ws://127.0.0.1:9001/echo", "chat");
  const withProtocols = new Socket(new URL("ws://127.0.0.1:9001/echo"), ["chat", "unisock.test"]);

  // unisock's options.
  const options: SocketOptions = {
    protocols: ["chat"],
    connectTimeout: 5_000,
    closeTimeout: 1_000,
    maxMessageSize: 1 << 20,
    receiveBuffer: 256,
    reconnect: {
      minDelay: 100,
      maxDelay: 5_000,
      factor: 1.5,
      maxRetries: 10,
      minUptime: 2_000,
      shouldReconnect: (info: DisconnectInfo): boolean =>
        info.code !== 4000 && info.error?.kind !== "HandshakeRejected" && info.retryByDefault,
    },
    queue: { maxMessages: 100, maxBytes: 1 << 16 },
    heartbeat: { interval: 10_000, timeout: 2_000, ping: "ping", pong: new Uint8Array([1]) },
  };
  const socket = new Socket("ws://127.0.0.1:9001/echo", options);
  new Socket("ws://127.0.0.1:9001/echo", { reconnect: false, heartbeat: false, connectTimeout: null });

  // Properties.
  const state: SocketReadyState = socket.readyState;
  const open: boolean = state === Socket.OPEN || socket.readyState === socket.OPEN;
  const connecting: 0 = Socket.CONNECTING;
  const buffered: number = socket.bufferedAmount;
  const protocol: string = socket.protocol;
  const url: string = socket.url;
  const retries: number = socket.retryCount;
  socket.binaryType = "arraybuffer";
  void [open, connecting, buffered, protocol, url, retries];

  // Handlers: the event types are precise.
  socket.onopen = function (event) {
    const self: Socket = this;
    const target: Socket = event.target;
    self.send(`opened ${target.url}`);
  };
  socket.onmessage = (event: SocketMessageEvent) => {
    const data: string | ArrayBuffer = event.data;
    if (typeof data === "string") {
      console.log(data.toUpperCase());
    } else {
      console.log(new Uint8Array(data).length);
    }
  };
  socket.onerror = (event) => {
    const error: UnisockError = event.error;
    const kind: UnisockErrorKind = error.kind;
    console.log(kind, event.message, error.message);
  };
  socket.onclose = (event: SocketCloseEvent) => {
    const unsent: SocketData[] = event.unsent;
    console.log(event.code, event.reason, event.wasClean, unsent.length);
  };
  socket.onreconnecting = (event) => {
    const attempt: number = event.attempt;
    const delay: number = event.delay;
    console.log(attempt, delay, event.code, event.reason);
  };
  socket.onmessage = null;

  // addEventListener: the listener's event type follows the event name.
  const controller = new AbortController();
  socket.addEventListener("message", (event) => {
    const data: SocketData = event.data;
    console.log(data);
  }, { signal: controller.signal, once: true });
  socket.addEventListener("close", { handleEvent: (event) => console.log(event.wasClean) });
  socket.addEventListener("reconnecting", (event) => console.log(event.attempt));
  const onError = (event: Event): void => console.log(event.type);
  socket.addEventListener("error", onError);
  socket.removeEventListener("error", onError);
  socket.dispatchEvent(new Event("open"));

  // A Socket is an EventTarget.
  const asTarget: EventTarget = socket;
  void asTarget;

  // send: strings and every kind of binary.
  const payloads: SendData[] = ["text", new ArrayBuffer(4), new Uint8Array(4), new DataView(new ArrayBuffer(2))];
  for (const payload of payloads) socket.send(payload);
  socket.send(new Float32Array([1.5]));

  // close, with or without code and reason.
  plain.close();
  withProtocol.close(1000);
  withProtocols.close(4000, "bye");

  // for await: the data of each message.
  for await (const data of socket) {
    const typed: string | ArrayBuffer = data;
    if (typed === "stop") break;
  }
  const iterator = socket[Symbol.asyncIterator]();
  const first: IteratorResult<SocketData, undefined> = await iterator.next();
  if (!first.done) {
    const value: SocketData = first.value;
    void value;
  }
  await iterator.return();

  // Misuse is a compile error.
  // @ts-expect-error: a number is not a subprotocol nor options
  new Socket("ws://127.0.0.1:9001/echo", 42);
  // @ts-expect-error: unknown option
  new Socket("ws://127.0.0.1:9001/echo", { reconect: false });
  // @ts-expect-error: delays are numbers of milliseconds
  new Socket("ws://127.0.0.1:9001/echo", { reconnect: { minDelay: "1s" } });
  // @ts-expect-error: the heartbeat needs its pong
  new Socket("ws://127.0.0.1:9001/echo", { heartbeat: { ping: "ping" } });
  // @ts-expect-error: Blobs cannot be sent (they are read asynchronously)
  socket.send(new Blob(["x"]));
  // @ts-expect-error: readyState is read-only
  socket.readyState = 1;
  // @ts-expect-error: binary data is always an ArrayBuffer
  socket.binaryType = "blob";
  // @ts-expect-error: a message event has no close code
  socket.addEventListener("message", (event) => console.log(event.code));
  // @ts-expect-error: the close code is a number
  socket.close("1000");
  socket.onclose = (event) => {
    // @ts-expect-error: data is string | ArrayBuffer, not just a string
    const text: string = event.unsent[0];
    void text;
  };
}

// SharedSocket: the same shape as Socket, with itself as the events' target.
export async function shared(): Promise<void> {
  const options: SharedSocketOptions = {
    protocols: "chat",
    reconnect: { minDelay: 100, maxRetries: null },
    heartbeat: { ping: "ping", pong: "pong" },
    worker: "dedicated",
    workerUrl: new URL("https://cdn.example/unisock-worker.js"),
  };
  const socket = new SharedSocket("ws://127.0.0.1:9001/echo", options);
  new SharedSocket(new URL("ws://127.0.0.1:9001/echo"), ["chat"]);
  const state: SocketReadyState = socket.readyState;
  const open: boolean = state === SharedSocket.OPEN || socket.readyState === socket.OPEN;
  const numbers: number[] = [socket.bufferedAmount, socket.retryCount];
  const strings: string[] = [socket.url, socket.protocol, socket.extensions, socket.binaryType];
  void [open, numbers, strings];
  socket.onopen = function (event) {
    const self: SharedSocket = this;
    const target: SharedSocket = event.target;
    self.send(`opened ${target.url}`);
  };
  socket.onmessage = (event) => {
    const data: SocketData = event.data;
    console.log(data, event.origin);
  };
  socket.onerror = (event) => console.log(event.error.kind, event.message);
  socket.onclose = (event: SharedSocketCloseEvent) => console.log(event.code, event.reason, event.wasClean, event.unsent);
  socket.addEventListener("reconnecting", (event) => console.log(event.attempt, event.delay, event.code));
  socket.onsession = (event) => {
    const acknowledged: boolean = event.acknowledged;
    const target: SharedSocket = event.target;
    console.log(acknowledged, event.resumed, target.url);
  };
  socket.addEventListener("gap", (event) => {
    const lost: SocketData[] = event.messages;
    console.log(event.direction, event.first, event.last, event.reason, lost);
  });
  socket.addEventListener("message", { handleEvent: (event) => console.log(event.data) }, { once: true });
  const asTarget: EventTarget = socket;
  void asTarget;
  socket.send(new Uint8Array([1]));
  socket.close(4000, "bye");
  for await (const data of socket) {
    const typed: SocketData = data;
    void typed;
  }

  // @ts-expect-error: functions cannot be sent to the worker
  new SharedSocket("ws://127.0.0.1:9001/echo", { reconnect: { shouldReconnect: () => true } });
  // @ts-expect-error: the worker is "shared" or "dedicated"
  new SharedSocket("ws://127.0.0.1:9001/echo", { worker: "service" });
  // @ts-expect-error: readyState is read-only
  socket.readyState = 1;
  // @ts-expect-error: a message event has no close code
  socket.addEventListener("message", (event) => console.log(event.code));
  // @ts-expect-error: a Socket is not a SharedSocket
  const wrong: Socket = socket;
  void wrong;
}

// Acknowledged sessions (docs/session-protocol.md).
export function sessions(): void {
  const socket = new Socket("ws://127.0.0.1:9001/rooms/lobby", {
    session: { maxUnackedMessages: 100, ackDelay: 10 },
  });
  new Socket("ws://127.0.0.1:9001/echo", { session: true });
  socket.onsession = (event) => {
    const on: boolean = event.acknowledged;
    console.log(on, event.resumed);
  };
  socket.addEventListener("gap", (event) => {
    const last: number | null = event.last;
    const lost: SocketData[] = event.messages;
    console.log(event.direction, event.first, last, event.reason, lost);
  });
  // @ts-expect-error: session takes a boolean or an object
  new Socket("ws://127.0.0.1:9001/echo", { session: "yes" });
  // @ts-expect-error: a gap's reason is one of a few strings
  socket.ongap = (event) => { const reason: "timeout" = event.reason; void reason; };
}

// A session's heartbeat needs no ping / pong messages.
export function sessionHeartbeat(): Socket {
  return new Socket("ws://127.0.0.1:9001/echo", { session: true, heartbeat: { interval: 5000, timeout: 2000 } });
}
