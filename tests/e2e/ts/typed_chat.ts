// Uses the wrapper generated for tests/testapp/typed_hubs.py with the official client. It is
// compiled with `tsc --strict` next to the generated module, so a wrong type in either fails
// the compilation; running it checks the wire names and values against a real server.
// Prints one JSON line with what it saw.
import * as signalR from "@microsoft/signalr";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";

import { type ChatClient, type ChatMessage, Mood, TypedChatHubClient } from "./generated.js";

// Node's globals, declared here rather than installing @types/node for two of them.
declare const process: { argv: string[]; env: Record<string, string | undefined> };

const base = process.argv[2];
const protocol = process.env["SIGNALR_PROTOCOL"] ?? "json";

let builder = new signalR.HubConnectionBuilder()
  .withUrl(base + "/hubs/typed", { transport: signalR.HttpTransportType.WebSockets })
  .configureLogging(signalR.LogLevel.None);
if (protocol === "messagepack") builder = builder.withHubProtocol(new MessagePackHubProtocol());
const connection = builder.build();
const hub = new TypedChatHubClient(connection);

const received: ChatMessage[] = [];
const notes: string[] = [];
const questions: string[] = [];
const impl: ChatClient = {
  receiveMessage(message) {
    received.push(message);
  },
  notify(text, level) {
    notes.push(`${level}: ${text}`);
  },
  async getAnswer(question) {
    questions.push(question);
    return question.length;
  },
};
const unregister = hub.registerHandlers(impl);

async function until(what: string, done: () => boolean): Promise<void> {
  for (let waited = 0; !done(); waited += 20) {
    if (waited > 30000) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function collect<T>(stream: signalR.IStreamResult<T>): Promise<T[]> {
  return new Promise((resolve, reject) => {
    const items: T[] = [];
    stream.subscribe({
      next: (item) => items.push(item),
      complete: () => resolve(items),
      error: (error) => reject(error),
    });
  });
}

// A string with JSON, a Date with MessagePack: the generated type says which.
function iso(value: string | Date): string {
  return value instanceof Date ? value.toISOString() : value;
}

await connection.start();

const message = await hub.sendMessage("ada", "hello", Mood.SAD);
await until("ReceiveMessage", () => received.length === 1);
const greetings = [await hub.greet("ada"), await hub.greet("bob", "Hi")];
const countdown = await collect(hub.countdown(3));

const numbers = new signalR.Subject<number>();
const pending = hub.total("sum", numbers);
numbers.next(1.5);
numbers.next(2);
numbers.complete();
const summary = await pending;

const answer = await hub.askAnswer("six?");
await hub.send.notifyMe("sent without waiting", "warning");
await until("notify", () => notes.length === 1);

const bytes = new Uint8Array([1, 2, 3]);
type Bytes = Parameters<TypedChatHubClient["reverseBytes"]>[0];
const data = (protocol === "messagepack" ? bytes : btoa(String.fromCharCode(...bytes))) as Bytes;
const reversed: Bytes = await hub.reverseBytes(data);

// Once the handlers are removed, messages the hub sends reach nothing.
unregister();
await hub.sendMessage("ada", "unheard");
await connection.stop();

console.log(
  JSON.stringify({
    message: { ...message, sentAt: iso(message.sentAt), replyTo: message.replyTo && iso(message.replyTo.sentAt) },
    received: received.map((m) => [m.userName, m.text, m.mood, m.replyTo?.text ?? null]),
    greetings,
    countdown,
    summary,
    answer,
    questions,
    notes,
    reversed: typeof reversed === "string" ? Array.from(atob(reversed), (c) => c.charCodeAt(0)) : Array.from(reversed),
  }),
);
