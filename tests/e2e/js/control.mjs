// A well-behaved control client, run while hostile clients attack the same server.
//
//   node control.mjs <baseUrl> '<options JSON>'
//
// It connects with the official client (WebSockets, JSON), prints {"ready": true} once
// connected, then for at least `duration` seconds: invokes Echo in a loop and times each
// round trip, timestamps every Ping the server sends it, and counts the numbered
// `Broadcast(i, payload)` messages that a second official connection (the sender) asks the
// hub to send to everyone. The last line is the result (JSON).
//
// The official client hides Pings, so the control wraps the handler its transport delivers
// frames to (`connection.onreceive`, set by HubConnection before start) and records the
// Ping records it sees before passing every frame on unchanged: the figures are those of
// the very connection that echoes and receives the broadcasts.
//
// Options: hub (path), keepAlive (the server's KEEP_ALIVE_INTERVAL, s; the client's server
// timeout is twice that, as ASP.NET Core recommends), duration (s), broadcast ({count,
// size, delay} or null), settle (s to wait for missing broadcasts after `duration`),
// echoInterval (ms between echoes), senderBase (the sender's server when it is another
// worker of a split deployment; default: the control's).
import { signalR, sleep } from "./lib.mjs";

const RS = "\x1e";
const [base, raw] = process.argv.slice(2);
const opts = {
  hub: "/hubs/isolation",
  keepAlive: 2,
  duration: 5,
  broadcast: null,
  settle: 20,
  echoInterval: 20,
  senderBase: null,
  ...JSON.parse(raw || "{}"),
};

// However the server misbehaves, the control ends: its caller waits for the last line.
const watchdog = setTimeout(() => {
  console.error(`control did not finish in ${opts.duration + opts.settle + 60} s`);
  process.exit(3);
}, (opts.duration + opts.settle + 60) * 1000);

function build(url = base) {
  const c = new signalR.HubConnectionBuilder()
    .withUrl(url + opts.hub, { transport: signalR.HttpTransportType.WebSockets })
    .configureLogging(signalR.LogLevel.None)
    .build();
  c.serverTimeoutInMilliseconds = 2 * opts.keepAlive * 1000;
  c.keepAliveIntervalInMilliseconds = opts.keepAlive * 1000;
  return c;
}

function percentile(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((q / 100) * sorted.length) - 1)];
}

const round = (x) => (x === null || x === undefined ? x : Math.round(x * 10) / 10);

const control = build();
const pings = [];
const inner = control.connection;
const deliver = inner.onreceive;
inner.onreceive = (data) => {
  if (typeof data === "string" && data.includes('"type":6')) {
    for (const record of data.split(RS)) {
      if (record && JSON.parse(record).type === 6) pings.push(performance.now());
    }
  }
  deliver(data);
};
let closedWith = null;
control.onclose((e) => (closedWith = e ? e.message : "closed without error"));

const received = new Set();
let wrongSize = 0;
control.on("Broadcast", (i, payload) => {
  received.add(i);
  if (opts.broadcast && payload.length !== opts.broadcast.size) wrongSize += 1;
});

const sender = build(opts.senderBase || base);
sender.on("Broadcast", () => {});
let senderClosedWith = null;
sender.onclose((e) => (senderClosedWith = e ? e.message : "closed without error"));

await control.start();
await sender.start();
const t0 = performance.now();
console.log(JSON.stringify({ ready: true, connectionId: control.connectionId }));

let senderResult = null;
let senderError = null;
let senderDone = !opts.broadcast;
if (opts.broadcast) {
  const { count, size, delay } = opts.broadcast;
  sender
    .invoke("Broadcast", count, size, delay)
    .then((r) => (senderResult = r))
    .catch((e) => (senderError = e.message))
    .finally(() => (senderDone = true));
}

const rtts = [];
const echoErrors = [];
const expected = opts.broadcast ? opts.broadcast.count : 0;
const minEnd = t0 + opts.duration * 1000;
const maxEnd = minEnd + opts.settle * 1000;
let i = 0;
while (closedWith === null) {
  const now = performance.now();
  const complete = received.size >= expected && senderDone;
  if ((now >= minEnd && complete) || now >= maxEnd) break;
  const start = performance.now();
  try {
    const back = await control.invoke("Echo", i);
    if (back !== i) echoErrors.push(`echo ${i} answered ${back}`);
    rtts.push(performance.now() - start);
  } catch (e) {
    echoErrors.push(e.message);
  }
  i += 1;
  await sleep(opts.echoInterval);
}
const end = performance.now();

// Gaps between consecutive Pings, with the time before the first and after the last one:
// a server that stops pinging altogether shows as one long trailing gap.
const marks = [t0, ...pings, end];
const gaps = [];
for (let k = 1; k < marks.length; k++) gaps.push((marks[k] - marks[k - 1]) / 1000);
const sortedRtts = [...rtts].sort((a, b) => a - b);

let connectionCount = null;
if (closedWith === null) {
  try {
    connectionCount = await control.invoke("ConnectionCount");
  } catch (e) {
    echoErrors.push(`ConnectionCount: ${e.message}`);
  }
}
const result = {
  seconds: round((end - t0) / 1000),
  echo: {
    count: rtts.length,
    p50: round(percentile(sortedRtts, 50)),
    p99: round(percentile(sortedRtts, 99)),
    max: round(sortedRtts.length ? sortedRtts[sortedRtts.length - 1] : null),
    errors: echoErrors.slice(0, 5),
  },
  pings: pings.length,
  maxPingGap: Math.round(Math.max(...gaps) * 1000) / 1000,
  pingGaps: gaps.map((g) => Math.round(g * 1000) / 1000),
  broadcasts: { expected, received: received.size, wrongSize, senderResult, senderError },
  closedWith,
  senderClosedWith,
  connectionCount,
};
await Promise.allSettled([control.stop(), sender.stop()]);
clearTimeout(watchdog);
console.log(JSON.stringify(result));
process.exit(0);
