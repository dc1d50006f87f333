// What the official client sees when the server it is connected to shuts down.
//
//   node shutdown.mjs <baseUrl>
//
// Connects with automatic reconnect (retrying every 200 ms for up to 60 s) over the
// transport and protocol of SIGNALR_TRANSPORT / SIGNALR_PROTOCOL, invokes Echo, and prints
// {"ready": connectionId}. The test then stops the server (SIGTERM) and starts a new one
// on the same port. Prints, as the last line:
// {closeMessage, transportError, reconnectingError, reconnected, closed, echo}
//   closeMessage: the server sent a Close message (the client logged receiving one)
//   transportError: the transport's own error, e.g. "WebSocket closed with status code: 1012"
//   reconnectingError: the error onreconnecting got (null: a Close that allows reconnecting)
//   reconnected: onreconnected fired (a new connection id on the new server)
//   closed: onclose fired (the client gave up: no reconnect)
//   echo: Echo's answer on the reconnected connection
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { PROTOCOL, TRANSPORT, signalR } from "./lib.mjs";

const [base] = process.argv.slice(2);
const result = {
  closeMessage: false,
  transportError: null,
  reconnectingError: undefined,
  reconnected: false,
  closed: false,
  echo: null,
};

const logger = {
  log(level, message) {
    if (message.includes("Close message received from server")) result.closeMessage = true;
    const transport = /(WebSocket closed with status code: \d+)/.exec(message);
    if (transport && result.transportError === null) result.transportError = transport[1];
  },
};

const options = {};
if (TRANSPORT) options.transport = signalR.HttpTransportType[TRANSPORT];
let builder = new signalR.HubConnectionBuilder()
  .withUrl(base + "/hubs/test", options)
  .configureLogging(logger)
  .withAutomaticReconnect({
    nextRetryDelayInMilliseconds: (context) => (context.elapsedMilliseconds < 60000 ? 200 : null),
  });
if (PROTOCOL === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
const connection = builder.build();

const done = new Promise((resolve) => {
  connection.onreconnecting((error) => {
    result.reconnectingError = error ? error.message : null;
  });
  connection.onreconnected(() => {
    result.reconnected = true;
    resolve();
  });
  connection.onclose(() => {
    result.closed = true;
    resolve();
  });
});

const timer = setTimeout(() => {
  console.log(JSON.stringify({ ...result, timedOut: true }));
  process.exit(3);
}, 90000);

await connection.start();
if ((await connection.invoke("Echo", "before")) !== "before") throw new Error("no echo");
console.log(JSON.stringify({ ready: connection.connectionId }));
await done;
if (result.reconnected) result.echo = await connection.invoke("Echo", "after");
await connection.stop();
clearTimeout(timer);
console.log(JSON.stringify(result));
process.exit(0);
