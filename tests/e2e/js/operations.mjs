// Operations scenarios (metrics, readiness, lifecycle log) with the official client.
// node operations.mjs <scenario> <baseUrl>; WORKER_B names the second worker. Prints the
// scenario's result as the last line (JSON).
import { connect, inbox, signalR, sleep, started } from "./lib.mjs";

const WS = { transport: signalR.HttpTransportType.WebSockets };
const LP = { transport: signalR.HttpTransportType.LongPolling };

async function expectError(promise) {
  try {
    await promise;
    return null;
  } catch (e) {
    return String(e && e.message ? e.message : e);
  }
}

async function scrape(base) {
  const response = await fetch(`${base}/metrics`);
  return { status: response.status, type: response.headers.get("content-type"), text: await response.text() };
}

// Traffic on both workers, scraped while the connections are open; then they end with
// known reasons (a Close, a long-polling DELETE, a server abort).
async function traffic(a) {
  const b = process.env.WORKER_B;
  const c1 = await started(a, "/hubs/test", WS);
  const c2 = await started(b, "/hubs/test", LP);
  const box = inbox(c2);
  for (let i = 0; i < 3; i++) await c1.invoke("Echo", `m${i}`);
  await c1.invoke("Add", 1, 2);
  const errors = [
    await expectError(c1.invoke("Fail")),
    await expectError(c1.invoke("FailHub")),
    await expectError(c1.invoke("NoSuchMethodAtAll")),
  ];
  await c1.invoke("SendToAll", "across");
  await box.wait(1, 20000);
  const wsgi = await fetch(`${process.env.WSGI}/broadcast?message=from-wsgi`);
  await box.wait(2, 20000);
  await c2.invoke("Echo", "from b");
  const during = { a: await scrape(a), b: await scrape(b) };
  const c3 = await started(a, "/hubs/test", WS);
  const closed = new Promise((resolve) => c3.onclose(() => resolve(true)));
  await c3.invoke("AbortMe").catch(() => null);
  await closed;
  await Promise.all([c1.stop(), c2.stop()]);
  return { errors, received: box.items, wsgi: wsgi.status, during };
}

// A connection closed by the client, one aborted by the hub, and a CORS preflight from an
// Origin the server does not allow (refused, and logged with why).
async function badOrigin(base) {
  const closing = await started(base, "/hubs/test", WS);
  await closing.stop();
  const aborted = await started(base, "/hubs/test", WS);
  const gone = new Promise((resolve) => aborted.onclose(() => resolve(true)));
  await aborted.invoke("AbortMe").catch(() => null);
  await gone;
  const response = await fetch(`${base}/hubs/test/negotiate?negotiateVersion=1`, {
    method: "OPTIONS",
    headers: { origin: "http://evil.example", "access-control-request-method": "POST" },
  });
  return { preflight: response.status };
}

// Fill the worker to its limit, read readiness, leave, read it again.
async function readinessAtLimit(base) {
  const before = await (await fetch(`${base}/health/ready`)).json();
  const clients = [await started(base, "/hubs/test", WS), await started(base, "/hubs/test", WS)];
  const full = await fetch(`${base}/health/ready`);
  const atLimit = { status: full.status, body: await full.json() };
  const refused = await expectError(started(base, "/hubs/test", WS));
  await Promise.all(clients.map((c) => c.stop()));
  let after = null;
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${base}/health/ready`);
    after = { status: r.status, body: await r.json() };
    if (r.status === 200) break;
    await sleep(100);
  }
  const live = await fetch(`${base}/health/live`);
  return { before, atLimit, refused: refused !== null, after, live: live.status };
}

const scenarios = { traffic, badOrigin, readinessAtLimit };
const [name, base] = process.argv.slice(2);
const timer = setTimeout(() => {
  console.error(`scenario ${name} did not finish in 50 s`);
  process.exit(3);
}, 50000);
try {
  const result = await scenarios[name](base);
  clearTimeout(timer);
  console.log(JSON.stringify(result ?? null));
  process.exit(0);
} catch (e) {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
}
