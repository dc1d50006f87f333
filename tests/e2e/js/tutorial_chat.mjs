// The tutorial's page, reduced to what it does: two official clients on the tutorial
// project's ChatHub, over every transport. One sends a message, the other must receive it;
// an empty message must come back as the hub's HubException text.
//
//   node tutorial_chat.mjs <hubUrl>
//
// The last line is the result (JSON): {"<transport>": {"received": ..., "error": ...}}.
import { signalR } from "./lib.mjs";

const [hubUrl] = process.argv.slice(2);
const result = {};
for (const name of ["WebSockets", "ServerSentEvents", "LongPolling"]) {
  const transport = signalR.HttpTransportType[name];
  const build = () =>
    new signalR.HubConnectionBuilder()
      .withUrl(hubUrl, { transport })
      .configureLogging(signalR.LogLevel.Error)
      .build();
  const ada = build();
  const bob = build();
  ada.on("ReceiveMessage", () => {});
  const received = new Promise((resolve) =>
    bob.on("ReceiveMessage", (user, text) => resolve(`${user}: ${text}`)),
  );
  await ada.start();
  await bob.start();
  await ada.invoke("SendMessage", "ada", "hello");
  let error = null;
  try {
    await ada.invoke("SendMessage", "ada", " ");
  } catch (err) {
    error = err.message;
  }
  result[name] = { received: await received, error };
  await ada.stop();
  await bob.stop();
}
console.log(JSON.stringify(result));
