// Connection handlers (raw connections) driven by the official client's HttpConnection.
// node connections.mjs <scenario> <baseUrl>; the transport comes from SIGNALR_TRANSPORT and
// the transfer format from SIGNALR_FORMAT ("Text" or "Binary"). Prints one JSON line last.
//
// HttpConnection is what HubConnection runs on; the package does not list it in its index,
// so it is imported from its module (the upstream functional tests import it the same way).
import assert from "node:assert/strict";
import * as signalR from "@microsoft/signalr";
import httpConnectionModule from "@microsoft/signalr/dist/cjs/HttpConnection.js";
import { roundRobinProxy } from "./scenarios.mjs";

const { HttpConnection } = httpConnectionModule;
const TRANSPORT = process.env.SIGNALR_TRANSPORT || "WebSockets";
const FORMAT = process.env.SIGNALR_FORMAT || "Text";
const LIMIT = 32 * 1024; // MAXIMUM_RECEIVE_MESSAGE_SIZE of the test project (the default)

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A started raw connection that records what it receives and how it closed.
async function open(url, options = {}, format = FORMAT) {
  const connection = new HttpConnection(url, {
    transport: signalR.HttpTransportType[TRANSPORT],
    logger: signalR.LogLevel.None,
    ...options,
  });
  const state = { connection, received: [], closed: null, waiters: [] };
  const wake = () => { state.waiters = state.waiters.filter((w) => !w()); };
  connection.onreceive = (data) => { state.received.push(data); wake(); };
  connection.onclose = (error) => { state.closed = { error: error ? String(error.message || error) : null }; wake(); };
  state.until = (predicate, what, ms = 20000) =>
    new Promise((resolve, reject) => {
      if (predicate()) return resolve();
      const timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}; have ${describe(state)}`)), ms);
      state.waiters.push(() => {
        if (!predicate()) return false;
        clearTimeout(timer);
        resolve();
        return true;
      });
    });
  state.texts = () => state.received.map((d) => (typeof d === "string" ? d : Buffer.from(d).toString()));
  state.next = async (count) => {
    await state.until(() => state.received.length >= count, `${count} messages`);
    return state.texts()[count - 1];
  };
  await connection.start(signalR.TransferFormat[format]);
  return state;
}

function describe(state) {
  return JSON.stringify({ received: state.received.length, closed: state.closed, texts: state.texts().map((t) => t.slice(0, 80)) });
}

const bytesOf = (data) => (typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data));
const kind = (data) => (typeof data === "string" ? "string" : data instanceof ArrayBuffer ? "ArrayBuffer" : typeof data);

function payloads() {
  if (FORMAT === "Binary") {
    const all = new Uint8Array(256).map((_, i) => i);
    const big = new Uint8Array(LIMIT).map((_, i) => (i * 7) % 256);
    return [all.buffer, new Uint8Array([0, 0x1e, 0xff]).buffer, big.buffer];
  }
  return ["hello", "héllo ✓ 𝄞", "two\nlines", "{\"type\":1}\u001e", "x".repeat(LIMIT - 4) + "€"];
}

// Each payload is echoed as received. Long polling may join messages that wait for the same
// poll (a raw connection has no framing), so what is compared is the byte stream.
export async function echo(base) {
  const c = await open(base + "/connections/echo");
  const sent = payloads();
  const expected = Buffer.concat(sent.map(bytesOf));
  for (const data of sent) await c.connection.send(data);
  await c.until(() => Buffer.concat(c.received.map(bytesOf)).length >= expected.length, "all echoes");
  const received = Buffer.concat(c.received.map(bytesOf));
  const out = {
    transport: TRANSPORT,
    equal: received.equals(expected),
    sentBytes: expected.length,
    messages: sent.length,
    frames: c.received.length,
    types: [...new Set(c.received.map(kind))],
    framesMatch: c.received.length === sent.length && c.received.every((d, i) => bytesOf(d).equals(bytesOf(sent[i]))),
  };
  await c.connection.stop();
  return out;
}

// One message over MAXIMUM_RECEIVE_MESSAGE_SIZE: the connection is closed with a clear error.
export async function tooLarge(base) {
  const c = await open(base + "/connections/control");
  await c.next(1); // welcome
  const id = c.connection.connectionId; // the client forgets it once closed
  const big = FORMAT === "Binary" ? new Uint8Array(LIMIT + 1).buffer : "y".repeat(LIMIT + 1);
  let sendError = null;
  try {
    await c.connection.send(big);
  } catch (e) {
    sendError = String(e.message || e);
  }
  await c.until(() => c.closed !== null, "the close");
  const out = { sendError, closeError: c.closed.error, ended: await endedOf(base, id) };
  return out;
}

// How a connection ended, asked over another connection of the control route.
async function endedOf(base, id) {
  const probe = await open(base + "/connections/control", {}, "Text");
  await probe.next(1);
  let answer = "running";
  for (let i = 0; answer === "running" && i < 200; i++) {
    const before = probe.received.length;
    await probe.connection.send(`ended:${id}`);
    answer = await probe.next(before + 1);
    if (answer === "running") await sleep(50);
  }
  await probe.connection.stop();
  return answer;
}

// The server side of a connection: on_connected, items, user, sends to another connection
// by id, a server-initiated close, and a failing on_message.
export async function control(base) {
  const a = await open(base + "/connections/control");
  const b = await open(base + "/connections/control");
  const out = { welcome: await a.next(1) };
  await b.next(1);
  await a.connection.send("ping");
  out.echo = await a.next(2);
  await a.connection.send("info");
  out.info = JSON.parse(await a.next(3));
  out.id = a.connection.connectionId;
  const idB = b.connection.connectionId;
  await a.connection.send(`to:${b.connection.connectionId}:hello b`);
  out.sent = await a.next(4);
  out.atB = await b.next(2);
  await a.connection.send("to:nobody:x");
  out.unknown = await a.next(5);
  // Server-initiated close: the last message arrives, then the client sees a normal close.
  await a.connection.send("close");
  out.bye = await a.next(6);
  await a.until(() => a.closed !== null, "the server's close");
  out.closeError = a.closed.error;
  out.closedEnded = await endedOf(base, out.id);
  // on_message raising closes the connection with an error; on_disconnected gets it.
  await b.connection.send("boom");
  await b.until(() => b.closed !== null, "the close after boom");
  out.boomCloseError = b.closed.error;
  out.boomEnded = await endedOf(base, idB);
  return out;
}

// on_connected raising: the connection is closed at once.
export async function refusing(base) {
  let startError = null;
  let c = null;
  try {
    c = await open(base + "/connections/refusing");
  } catch (e) {
    startError = String(e.message || e);
  }
  if (c !== null) await c.until(() => c.closed !== null, "the close");
  return { startError, closeError: c && c.closed ? c.closed.error : null, received: c ? c.received.length : 0 };
}

// Many connections at once, each getting only its own messages back.
export async function concurrent(base) {
  const count = Number(process.env.CONNECTIONS || 50);
  const connections = await Promise.all(Array.from({ length: count }, () => open(base + "/connections/echo")));
  await Promise.all(
    connections.map(async (c, i) => {
      for (let k = 0; k < 5; k++) await c.connection.send(`${i}:${k};`);
    }),
  );
  await Promise.all(
    connections.map((c, i) => {
      const want = Array.from({ length: 5 }, (_, k) => `${i}:${k};`).join("");
      return c.until(() => c.texts().join("") === want, `the echoes of connection ${i}`);
    }),
  );
  const ids = new Set(connections.map((c) => c.connection.connectionId));
  await Promise.all(connections.map((c) => c.connection.stop()));
  return { connections: count, distinctIds: ids.size, closedCleanly: connections.filter((c) => c.closed && c.closed.error === null).length };
}

// Authorization: anonymous clients are refused at negotiate; a bearer token's user connects.
export async function auth(base) {
  const out = {};
  try {
    await open(base + "/connections/auth");
    out.anonymous = "connected";
  } catch (e) {
    out.anonymous = String(e.message || e);
  }
  const login = await fetch(`${base}/make-user?name=raw-user`);
  const { token } = await login.json();
  const c = await open(base + "/connections/auth", { accessTokenFactory: () => token });
  out.first = await c.next(1);
  await c.connection.send("echo me");
  out.echo = await c.next(2);
  await c.connection.stop();
  return out;
}

// Split deployment: every request of the client goes to the next worker in turn, so HTTP
// transport requests reach the worker that does not hold the connection and are forwarded.
export async function roundRobin(base) {
  const proxy = await roundRobinProxy([base, process.env.WORKER_B]);
  const out = {};
  try {
    const c = await open(proxy.url + "/connections/control");
    out.welcome = await c.next(1);
    const expected = [];
    for (let i = 0; i < 6; i++) {
      await c.connection.send(`m${i}`);
      expected.push(`got:m${i}`);
    }
    await c.until(() => c.received.length >= 7, "the replies");
    out.replies = c.texts().slice(1);
    assert.deepEqual(out.replies, expected);
    await c.connection.send("info");
    out.info = JSON.parse(await c.next(8));
    await c.connection.send("close");
    out.bye = await c.next(9);
    await c.until(() => c.closed !== null, "the server's close");
    out.closeError = c.closed.error;
  } finally {
    proxy.close();
  }
  out.counts = proxy.counts;
  return out;
}

const [name, base] = process.argv.slice(2);
const scenario = { echo, tooLarge, control, refusing, concurrent, auth, roundRobin }[name];
if (!scenario) {
  console.error(`unknown scenario ${name}`);
  process.exit(2);
}
const timer = setTimeout(() => {
  console.error(`scenario ${name} did not finish in 50 s`);
  process.exit(3);
}, 50000);
try {
  const result = await scenario(base);
  clearTimeout(timer);
  console.log(JSON.stringify(result ?? null));
  process.exit(0);
} catch (e) {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
}
