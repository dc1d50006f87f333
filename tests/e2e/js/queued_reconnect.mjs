// Stateful reconnect while invocations wait for a slot on the server.
//
//   node queued_reconnect.mjs <baseUrl>
//
// The official client with withStatefulReconnect() invokes DelayedEcho four times at once;
// the server runs one invocation per client at a time (its default), so three wait while
// its read loop holds back. Once the first call has started, the socket is cut under the
// client (a TCP proxy in this process destroys both ends). The client must resume the same
// connection on a new socket and every call must complete with its own result.
// Prints {calls, results, closedWith, sameConnection, startedBeforeCut} as JSON.
import net from "node:net";
import { signalR, sleep } from "./lib.mjs";

const [base] = process.argv.slice(2);
const CALLS = 4;
const DELAY = 0.5;

function tcpProxy(targetPort) {
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    for (const s of [client, upstream]) {
      s.on("error", drop);
      s.on("close", drop);
    }
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        port: server.address().port,
        cut() {
          for (const s of sockets) s.destroy();
          sockets.clear();
        },
        close() {
          this.cut();
          server.close();
        },
      }),
    ),
  );
}

async function until(condition, ms, what) {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const watchdog = setTimeout(() => {
  console.error("queued_reconnect did not finish in 50 s");
  process.exit(3);
}, 50000);

const proxy = await tcpProxy(Number(new URL(base).port));
const c = new signalR.HubConnectionBuilder()
  .withUrl(`http://127.0.0.1:${proxy.port}/hubs/isolation`, {
    transport: signalR.HttpTransportType.WebSockets,
  })
  .withStatefulReconnect()
  .configureLogging(signalR.LogLevel.None)
  .build();
let closedWith = null;
c.onclose((e) => (closedWith = e ? e.message : "closed without error"));
const started = [];
c.on("Started", (value) => started.push(value));
await c.start();
const id = await c.invoke("ConnectionId");

const calls = [];
for (let i = 0; i < CALLS; i++) calls.push(c.invoke("DelayedEcho", i, DELAY));
await until(() => started.length >= 1, 20000, "the first call to start");
// The other calls are on the wire by now; give the server a moment to queue them behind
// the running one (the test holds either way; this makes the queued case the usual one).
await sleep(150);
const startedBeforeCut = started.length;
proxy.cut();

const settled = await Promise.race([
  Promise.allSettled(calls),
  sleep(30000).then(() => null),
]);
const results = settled
  ? settled.map((r) => (r.status === "fulfilled" ? r : { status: r.status, reason: r.reason.message }))
  : "calls still pending after 30 s";
const closedBeforeStop = closedWith;
let sameConnection = null;
if (closedWith === null) {
  try {
    sameConnection = (await c.invoke("ConnectionId")) === id;
  } catch (e) {
    sameConnection = `ConnectionId failed: ${e.message}`;
  }
}
await c.stop().catch(() => {});
proxy.close();
clearTimeout(watchdog);
console.log(
  JSON.stringify({ calls: CALLS, results, closedWith: closedBeforeStop, sameConnection, startedBeforeCut }),
);
process.exit(0);
