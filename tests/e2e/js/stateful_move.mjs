// Stateful reconnect across workers: the connection moves to whichever worker the resumed
// socket reaches.
//
//   node stateful_move.mjs <drops|drain>
//   env: WORKER_A, WORKER_B (base URLs), WORKER_A_PID, DURATION (seconds),
//        SIGNALR_PROTOCOL (json or messagepack)
//
// One official client with withStatefulReconnect() talks to /hubs/stateful through a
// round-robin proxy in this process. It sends numbered `Record` messages (the server answers
// each with `Recorded`), while a plain client connected straight to worker B sends numbered
// `Tick`s to it by connection id and to a group it joined (through the backplane whenever
// the connection is on A).
// - drops: the proxy destroys the client's socket every few seconds; each resume lands on
//   the other worker.
// - drain: after a while the connection is brought to worker A, and A gets SIGTERM; the
//   client resumes through the proxy, which finds A's listening socket closed and goes to B.
// Prints counts of lost and duplicated messages both ways as JSON.
import http from "node:http";
import net from "node:net";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { signalR, sleep } from "./lib.mjs";

const [mode] = process.argv.slice(2);
const A = process.env.WORKER_A;
const B = process.env.WORKER_B;
const DURATION = Number(process.env.DURATION || "60") * 1000;
const DROP_EVERY = 3000;
const PACE = 20;

function roundRobin(targets) {
  const sockets = new Set();
  let next = 0;
  const pick = () => new URL(targets[next++ % targets.length]);
  const server = http.createServer((req, res) => {
    const target = pick();
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (response) => {
        res.writeHead(response.statusCode, response.headers);
        response.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  });
  server.on("upgrade", (req, socket, head) => {
    // Like a load balancer, try the next worker when one refuses the TCP connection (a
    // draining worker has closed its listening socket).
    const attempt = (tries) => {
      const target = pick();
      let connected = false;
      const upstream = net.connect(Number(target.port), target.hostname, () => {
        connected = true;
        const lines = [`${req.method} ${req.url} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        upstream.write(lines.join("\r\n") + "\r\n\r\n");
        upstream.write(head);
        upstream.pipe(socket);
        socket.pipe(upstream);
      });
      const pair = [socket, upstream];
      sockets.add(pair);
      const drop = () => {
        socket.destroy();
        upstream.destroy();
        sockets.delete(pair);
      };
      upstream.on("error", () => {
        sockets.delete(pair);
        if (!connected && tries > 1 && !socket.destroyed) attempt(tries - 1);
        else drop();
      });
      upstream.on("close", () => connected && drop());
      socket.on("error", drop);
      socket.on("close", drop);
    };
    attempt(targets.length);
  });
  server.keepAliveTimeout = 1;
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        drop() {
          for (const [a, b] of sockets) {
            a.destroy();
            b.destroy();
          }
          sockets.clear();
        },
        close() {
          this.drop();
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
    await sleep(20);
  }
}

function tally(counts, expected) {
  let missing = 0;
  let duplicated = 0;
  for (let n = 1; n <= expected; n++) {
    const seen = counts.get(n) || 0;
    if (seen === 0) missing += 1;
    if (seen > 1) duplicated += seen - 1;
  }
  const unexpected = [...counts.keys()].filter((n) => n < 1 || n > expected).length;
  return { missing, duplicated, unexpected };
}

const watchdog = setTimeout(() => {
  console.error("stateful_move did not finish in time");
  process.exit(3);
}, DURATION + 120000);

const proxy = await roundRobin([A, B]);
let builder = new signalR.HubConnectionBuilder()
  .withUrl(`${proxy.url}/hubs/stateful`, { transport: signalR.HttpTransportType.WebSockets })
  .withStatefulReconnect()
  .configureLogging(signalR.LogLevel.None);
if (process.env.SIGNALR_PROTOCOL === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
const client = builder.build();
let closedWith = null;
client.onclose((e) => (closedWith = e ? e.message : "closed without error"));
const recorded = new Map();
const ticks = new Map();
client.on("Recorded", (n) => recorded.set(n, (recorded.get(n) || 0) + 1));
client.on("Tick", (n) => ticks.set(n, (ticks.get(n) || 0) + 1));
await client.start();
const id = client.connectionId;
const GROUP = `move-${id}`;
await client.invoke("Join", GROUP);

const ticker = new signalR.HubConnectionBuilder()
  .withUrl(`${B}/hubs/stateful`, { transport: signalR.HttpTransportType.WebSockets })
  .configureLogging(signalR.LogLevel.None)
  .build();
await ticker.start();

let running = true;
let sent = 0;
let ticked = 0;
const errors = [];
const sender = (async () => {
  while (running && closedWith === null) {
    sent += 1;
    await client.send("Record", sent).catch((e) => errors.push(`send: ${e.message}`));
    await sleep(PACE);
  }
})();
const tickerLoop = (async () => {
  while (running) {
    ticked += 1;
    // Odd numbers to the connection, even ones to its group: both must follow it.
    const tick = ticked % 2 ? ticker.send("TickTo", id, ticked) : ticker.send("TickGroup", GROUP, ticked);
    await tick.catch((e) => errors.push(`tick: ${e.message}`));
    await sleep(PACE);
  }
})();

const pids = new Set();
let drops = 0;
const worker = async () => {
  const pid = await client.invoke("Worker");
  pids.add(pid);
  return pid;
};

const started = Date.now();
let killed = null;
if (mode === "drops") {
  while (Date.now() - started < DURATION && closedWith === null) {
    await sleep(DROP_EVERY);
    proxy.drop();
    drops += 1;
    await worker().catch((e) => errors.push(`worker: ${e.message}`));
  }
} else {
  await sleep(DROP_EVERY);
  const pidA = Number(process.env.WORKER_A_PID);
  // Bring the connection to A (each drop resumes on the other worker).
  for (let i = 0; i < 6 && (await worker()) !== pidA; i++) {
    proxy.drop();
    drops += 1;
    await sleep(500);
  }
  if ((await worker()) !== pidA) throw new Error("the connection never reached worker A");
  await sleep(DROP_EVERY);
  process.kill(pidA, "SIGTERM");
  killed = pidA;
  await sleep(DURATION);
  await worker().catch((e) => errors.push(`worker: ${e.message}`));
}
running = false;
await sender;
await tickerLoop;
// Everything sent must arrive; give a busy machine time.
await until(
  () => closedWith !== null || (recorded.size >= sent && ticks.size >= ticked),
  60000,
  "every message",
).catch((e) => errors.push(e.message));
const closedBeforeStop = closedWith;
const sameConnection = closedWith === null ? client.connectionId === id : false;
const lastWorker = closedWith === null ? await worker().catch(() => null) : null;
await client.stop().catch(() => {});
await ticker.stop().catch(() => {});
proxy.close();
clearTimeout(watchdog);
console.log(
  JSON.stringify({
    sent,
    recorded: tally(recorded, sent),
    ticked,
    ticks: tally(ticks, ticked),
    drops,
    workers: pids.size,
    killed,
    lastWorker,
    sameConnection,
    closedWith: closedBeforeStop,
    errors,
  }),
);
process.exit(0);
