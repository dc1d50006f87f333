// Official clients under continuous load while their workers are restarted one by one.
//
//   node rolling.mjs <wsgiBase> <workerA> <workerB>
//
// Half the clients connect through a round-robin proxy in front of both workers, half
// through the WSGI site's negotiate redirect (which sends them to the least loaded worker).
// The proxy behaves as nginx does by default: a fresh upstream connection per request, and
// an upstream that refuses the connection is skipped for the next one. Every client uses
// withAutomaticReconnect() with the default delays (0, 2, 10, 30 s), rejoins the group
// "rolling" on each (re)connection, asks which worker holds it (Worker), and invokes Echo
// without pause while connected. A broadcaster posts to the group through the WSGI site.
//
// Prints {"ready": n} once every client is connected, then {"status": {reconnecting,
// reconnects}} whenever a client starts or ends reconnecting. On "stop" (a line on stdin) it sends a last
// broadcast, waits for every client to get it, and prints the result:
// {clients: [{via, reconnects, retryCounts, ids, workers, failures, closeCodes, closed,
// invocations, lastBroadcast}], proxy: {counts, skipped}}
import http from "node:http";
import net from "node:net";
import readline from "node:readline";
import { signalR, sleep } from "./lib.mjs";

const [web, workerA, workerB] = process.argv.slice(2);
const COUNT = Number(process.env.CLIENTS || "8");
const DEFAULT_DELAYS = [0, 2000, 10000, 30000];

// Round robin over `targets`, skipping one that refuses the TCP connection.
async function failoverProxy(targets) {
  let next = 0;
  const counts = targets.map(() => 0);
  let skipped = 0;
  const order = () => {
    const first = next++ % targets.length;
    return targets.map((_, i) => (first + i) % targets.length);
  };
  // Connects to the first target that accepts, in round-robin order.
  const connectAny = (indexes, onConnected, onFailed) => {
    const [index, ...rest] = indexes;
    const target = new URL(targets[index]);
    const socket = net.connect(Number(target.port), target.hostname);
    const refused = (error) => {
      if (rest.length && ["ECONNREFUSED", "ECONNRESET"].includes(error.code)) {
        skipped += 1;
        connectAny(rest, onConnected, onFailed);
      } else {
        onFailed(error);
      }
    };
    socket.once("error", refused);
    socket.once("connect", () => {
      socket.removeListener("error", refused);
      counts[index] += 1;
      onConnected(socket);
    });
  };
  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const chunk of req) chunks.push(chunk);
    const body = Buffer.concat(chunks);
    const attempt = ([index, ...rest]) => {
      const target = new URL(targets[index]);
      const upstream = http.request(
        {
          host: target.hostname,
          port: target.port,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, connection: "close" },
          agent: false,
        },
        (response) => {
          counts[index] += 1;
          res.writeHead(response.statusCode, response.headers);
          response.pipe(res);
        },
      );
      upstream.on("error", (error) => {
        if (!res.headersSent && rest.length && ["ECONNREFUSED", "ECONNRESET"].includes(error.code)) {
          skipped += 1;
          attempt(rest);
        } else {
          res.destroy();
        }
      });
      res.on("close", () => upstream.destroy());
      upstream.end(body);
    };
    attempt(order());
  });
  server.on("upgrade", (req, client, head) => {
    connectAny(
      order(),
      (upstream) => {
        const lines = [`${req.method} ${req.url} HTTP/1.1`];
        for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
        upstream.write(lines.join("\r\n") + "\r\n\r\n");
        upstream.write(head);
        upstream.pipe(client);
        client.pipe(upstream);
        const drop = () => { client.destroy(); upstream.destroy(); };
        upstream.on("error", drop);
        client.on("error", drop);
        upstream.on("close", () => client.end());
        client.on("close", () => upstream.end());
      },
      () => client.destroy(),
    );
  });
  server.keepAliveTimeout = 1;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, stats: () => ({ counts, skipped }), close: () => server.close() };
}

function makeClient(index, base) {
  const record = {
    via: base === web ? "wsgi" : "proxy",
    reconnects: 0,
    retryCounts: [],
    ids: [],
    workers: [],
    failures: [],
    closeCodes: [],
    closed: null,
    invocations: 0,
    broadcasts: [],
  };
  const logger = {
    log(level, message) {
      const code = /status code: (\d+)/.exec(message);
      if (code) record.closeCodes.push(Number(code[1]));
    },
  };
  const hub = base === web ? "/site/hubs/test" : "/hubs/test";
  const connection = new signalR.HubConnectionBuilder()
    .withUrl(base + hub)
    .configureLogging(logger)
    .withAutomaticReconnect({
      nextRetryDelayInMilliseconds: (context) => {
        record.retryCounts.push(context.previousRetryCount);
        return context.previousRetryCount < DEFAULT_DELAYS.length
          ? DEFAULT_DELAYS[context.previousRetryCount]
          : null;
      },
    })
    .build();
  connection.on("Receive", (route, message) => record.broadcasts.push(message));
  const joined = async () => {
    record.ids.push(connection.connectionId);
    await connection.invoke("Join", "rolling");
    const worker = await connection.invoke("Worker");
    record.workers.push(worker);
  };
  let wake = () => {};
  connection.onreconnecting(() => {
    status.reconnecting += 1;
    report();
  });
  connection.onreconnected(async () => {
    record.reconnects += 1;
    try {
      await joined();
    } catch (error) {
      record.failures.push({ id: connection.connectionId, error: `rejoin: ${error.message}` });
    }
    status.reconnecting -= 1;
    status.reconnects += 1;
    report();
    wake();
  });
  let running = true;
  connection.onclose((error) => {
    if (running) record.closed = error ? error.message : "closed";
    wake();
  });
  const loop = async () => {
    while (running) {
      if (connection.state !== signalR.HubConnectionState.Connected) {
        if (connection.state === signalR.HubConnectionState.Disconnected) return;
        await new Promise((resolve) => { wake = resolve; setTimeout(resolve, 1000); });
        continue;
      }
      const id = connection.connectionId;
      try {
        const value = `${index}:${record.invocations}`;
        if ((await connection.invoke("Echo", value)) !== value) throw new Error("wrong echo");
        record.invocations += 1;
      } catch (error) {
        record.failures.push({ id, error: error.message });
      }
    }
  };
  return {
    record,
    connection,
    async start() {
      await connection.start();
      await joined();
      this.done = loop();
    },
    async stop() {
      running = false;
      wake();
      await this.done;
      await connection.stop();
    },
  };
}

const status = { reconnecting: 0, reconnects: 0 };
const report = () => console.log(JSON.stringify({ status: { ...status } }));

const proxy = await failoverProxy([workerA, workerB]);
const clients = [];
for (let i = 0; i < COUNT; i++) clients.push(makeClient(i, i % 2 ? web : proxy.url));
for (const client of clients) await client.start();

let broadcasting = true;
let sequence = 0;
const broadcaster = (async () => {
  while (broadcasting) {
    await fetch(`${web}/broadcast?target=group&group=rolling&message=${sequence++}`).catch(() => {});
    await sleep(250);
  }
})();
console.log(JSON.stringify({ ready: clients.length }));

const input = readline.createInterface({ input: process.stdin });
for await (const line of input) {
  if (line.trim() === "stop") break;
}
broadcasting = false;
await broadcaster;
const last = `last-${sequence}`;
const response = await fetch(`${web}/broadcast?target=group&group=rolling&message=${last}`);
const lastStatus = response.status;
for (let waited = 0; waited < 30000; waited += 100) {
  if (clients.every((c) => c.record.broadcasts.includes(last))) break;
  await sleep(100);
}
for (const client of clients) await client.stop();
proxy.close();
console.log(
  JSON.stringify({
    lastStatus,
    clients: clients.map((c) => ({
      ...c.record,
      broadcasts: c.record.broadcasts.length,
      lastBroadcast: c.record.broadcasts.includes(last),
    })),
    proxy: proxy.stats(),
  }),
);
process.exit(0);
