// One official client on a port whose worker is replaced (see test_drain.py).
//
//   node handover.mjs <baseUrl>
//
// Connects (over SIGNALR_TRANSPORT when set) with withAutomaticReconnect() and its default delays (0, 2, 10, 30 s), asks
// which process holds it (Worker) and prints {"ready": worker}. Once it has reconnected
// it asks again and prints, as the last line:
// {worker, retryCounts, closeCodes, errors, closed, echo}
//   retryCounts: previousRetryCount of every retry the client scheduled ([0]: the first
//   attempt, made at once, succeeded)
//   closeCodes: WebSocket close codes the client reported (1006: the socket was dropped)
//   errors: what the client logged as warnings or errors
import { TRANSPORT, signalR } from "./lib.mjs";

const [base] = process.argv.slice(2);
const DEFAULT_DELAYS = [0, 2000, 10000, 30000];
const result = { retryCounts: [], closeCodes: [], errors: [], closed: null, worker: null, echo: null };

const connection = new signalR.HubConnectionBuilder()
  .withUrl(base + "/hubs/test", TRANSPORT ? { transport: signalR.HttpTransportType[TRANSPORT] } : {})
  .configureLogging({
    log(level, message) {
      const code = /status code: (\d+)/.exec(message);
      if (code) result.closeCodes.push(Number(code[1]));
      if (level >= signalR.LogLevel.Warning) result.errors.push(message);
    },
  })
  .withAutomaticReconnect({
    nextRetryDelayInMilliseconds: (context) => {
      result.retryCounts.push(context.previousRetryCount);
      return DEFAULT_DELAYS[context.previousRetryCount] ?? null;
    },
  })
  .build();

const moved = new Promise((resolve) => {
  connection.onreconnected(resolve);
  connection.onclose((error) => {
    result.closed = error ? error.message : "closed";
    resolve();
  });
});
const timer = setTimeout(() => {
  console.log(JSON.stringify({ ...result, timedOut: true }));
  process.exit(3);
}, 120000);

await connection.start();
console.log(JSON.stringify({ ready: await connection.invoke("Worker") }));
await moved;
if (result.closed === null) {
  result.worker = await connection.invoke("Worker");
  result.echo = await connection.invoke("Echo", "after");
}
clearTimeout(timer);
console.log(JSON.stringify(result));
await connection.stop();
process.exit(0);
