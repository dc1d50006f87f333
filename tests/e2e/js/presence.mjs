// Official clients held open while the test asks the cluster about them.
//
//   node presence.mjs
//
// Reads one JSON command per line on stdin and prints one JSON line per command:
//   {"op":"open","name":"a1","url":"http://.../hubs/caps?user=alice","reconnect":true,
//    "listen":["Presence"]}
//        -> {"connectionId": "..."}
//   {"op":"invoke","name":"a1","method":"Join","args":["room"]} -> {"result": ...}
//   {"op":"wait","name":"a1","until":"closed"|"reconnected","ms":20000}
//        -> {"closedWith": "...", "reconnecting": [...], "connectionId": "..."}
//   {"op":"received","name":"a1"} -> {"received": [[arg, ...], ...]} (methods in `listen`)
//   {"op":"stop","name":"a1"} -> {"stopped": true}
//   {"op":"quit"} -> exits after stopping every connection
// Errors come back as {"error": "..."}; the script never exits on its own before "quit".
import * as readline from "node:readline";
import { signalR } from "./lib.mjs";

const connections = new Map();

function open({ name, url, reconnect, listen = [] }) {
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(url, { transport: signalR.HttpTransportType.WebSockets })
    .configureLogging(signalR.LogLevel.None);
  if (reconnect) builder = builder.withAutomaticReconnect([0, 500, 1000, 2000, 2000]);
  const connection = builder.build();
  const entry = {
    connection,
    closedWith: undefined,
    reconnecting: [],
    reconnected: [],
    waiters: [],
    received: [],
  };
  for (const method of listen) connection.on(method, (...args) => entry.received.push(args));
  const notify = () => (entry.waiters = entry.waiters.filter((w) => !w()));
  connection.onclose((e) => {
    entry.closedWith = e ? e.message : null;
    notify();
  });
  connection.onreconnecting((e) => {
    entry.reconnecting.push(e ? e.message : null);
    notify();
  });
  connection.onreconnected((id) => {
    entry.reconnected.push(id);
    notify();
  });
  connections.set(name, entry);
  return connection.start().then(() => ({ connectionId: connection.connectionId }));
}

function wait({ name, until, ms = 20000 }) {
  const entry = connections.get(name);
  const done = () =>
    until === "closed" ? entry.closedWith !== undefined : entry.reconnected.length > 0;
  const result = () => ({
    closedWith: entry.closedWith,
    reconnecting: entry.reconnecting,
    reconnected: entry.reconnected,
    connectionId: entry.connection.connectionId,
    state: entry.connection.state,
  });
  if (done()) return Promise.resolve(result());
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`${name} not ${until} after ${ms} ms: ${JSON.stringify(result())}`)),
      ms,
    );
    entry.waiters.push(() => {
      if (!done()) return false;
      clearTimeout(timer);
      resolve(result());
      return true;
    });
  });
}

async function run(command) {
  const entry = connections.get(command.name);
  switch (command.op) {
    case "open":
      return open(command);
    case "invoke":
      return { result: (await entry.connection.invoke(command.method, ...(command.args || []))) ?? null };
    case "wait":
      return wait(command);
    case "received":
      return { received: entry.received };
    case "stop":
      await entry.connection.stop();
      return { stopped: true };
    case "quit":
      await Promise.allSettled([...connections.values()].map((e) => e.connection.stop()));
      console.log(JSON.stringify({ quit: true }));
      process.exit(0);
    default:
      throw new Error(`unknown op ${command.op}`);
  }
}

// Commands run one after another: the test reads each answer before sending the next.
const lines = readline.createInterface({ input: process.stdin });
for await (const line of lines) {
  if (!line.trim()) continue;
  let reply;
  try {
    reply = await run(JSON.parse(line));
  } catch (e) {
    reply = { error: e && e.message ? e.message : String(e) };
  }
  console.log(JSON.stringify(reply));
}
process.exit(0);
