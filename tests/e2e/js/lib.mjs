// Helpers shared by the Node scenarios: build connections with the official client.
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

export { signalR };

// The transport and hub protocol under test come from the environment, so every scenario
// runs over each combination the official client allows.
export const TRANSPORT = process.env.SIGNALR_TRANSPORT || "";
export const PROTOCOL = process.env.SIGNALR_PROTOCOL || "json";

export function connect(base, hub = "/hubs/test", options = {}, configure = (b) => b) {
  const withTransport = { ...options };
  if (TRANSPORT && withTransport.transport === undefined) {
    withTransport.transport = signalR.HttpTransportType[TRANSPORT];
  }
  let builder = new signalR.HubConnectionBuilder()
    .withUrl(base + hub, withTransport)
    .configureLogging(signalR.LogLevel.None);
  if (PROTOCOL === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
  return configure(builder).build();
}

export async function started(base, hub, options, configure) {
  const connection = connect(base, hub, options, configure);
  await connection.start();
  return connection;
}

// Collects `Receive(route, message)` calls; `next(n)` waits for n more of them.
export function inbox(connection, method = "Receive") {
  const items = [];
  let waiters = [];
  connection.on(method, (...args) => {
    items.push(args);
    waiters = waiters.filter((w) => !w());
  });
  return {
    items,
    async wait(count, ms = 5000) {
      if (items.length >= count) return items;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`timed out waiting for ${count} messages, have ${JSON.stringify(items)}`)),
          ms,
        );
        waiters.push(() => {
          if (items.length >= count) {
            clearTimeout(timer);
            resolve(items);
            return true;
          }
          return false;
        });
      });
    },
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function expectError(promise) {
  try {
    await promise;
  } catch (e) {
    return e.message;
  }
  throw new Error("expected the call to fail");
}

export function streamAll(connection, method, ...args) {
  return new Promise((resolve, reject) => {
    const items = [];
    connection.stream(method, ...args).subscribe({
      next: (i) => items.push(i),
      complete: () => resolve(items),
      error: (e) => reject(e),
    });
  });
}
