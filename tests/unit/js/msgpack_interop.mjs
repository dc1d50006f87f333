// Interop probe for tests/unit/test_messagepack_protocol.py, using the official JS client's
// MessagePackHubProtocol. Reads {"parse": [hex, ...]} on stdin and prints one JSON object:
//   written: name -> hex of messages the client writes (framed, as sent on the wire)
//   parsed:  for each input hex buffer, the messages the client parses out of it
// Binary values print as {"$bin": hex} and dates as {"$date": ISO string}.
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import { NullLogger } from "@microsoft/signalr";

const protocol = new MessagePackHubProtocol();

const toHex = (buffer) => Buffer.from(new Uint8Array(buffer)).toString("hex");

const fromHex = (hex) => {
  const bytes = Buffer.from(hex, "hex");
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
};

function replacer(key, value) {
  const original = this[key];
  if (original instanceof Uint8Array) return { $bin: toHex(original) };
  if (original instanceof Date) return { $date: original.toISOString() };
  return value;
}

const messages = {
  invocation: {
    type: 1,
    invocationId: "1",
    target: "Echo",
    arguments: [
      new Uint8Array([1, 2, 255]),
      new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678)),
      42,
      -7,
      1.5,
      "hé",
      null,
      true,
      { a: [1, "b"] },
    ],
    streamIds: [],
  },
  invocationWithHeadersAndStreams: {
    type: 1,
    headers: { trace: "abc" },
    invocationId: "2",
    target: "Upload",
    arguments: [],
    streamIds: ["s1", "s2"],
  },
  nonBlocking: { type: 1, target: "Fire", arguments: [1] }, // five items: no streamIds
  streamInvocation: { type: 4, invocationId: "3", target: "Counter", arguments: [10], streamIds: [] },
  streamItem: { type: 2, invocationId: "s1", item: { x: 1 } },
  completionResult: { type: 3, invocationId: "4", result: "ok" },
  completionNull: { type: 3, invocationId: "5", result: null },
  completionVoid: { type: 3, invocationId: "6" },
  completionError: { type: 3, invocationId: "7", error: "boom" },
  cancel: { type: 5, invocationId: "3" },
  ping: { type: 6 },
  close: { type: 7 },
  ack: { type: 8, sequenceId: 36 },
  sequence: { type: 9, sequenceId: 2 ** 40 },
};

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.setEncoding("utf8");
  process.stdin.on("data", (chunk) => { text += chunk; });
  process.stdin.on("end", () => resolve(text || "{}"));
}));

const written = {};
for (const [name, message] of Object.entries(messages)) {
  written[name] = toHex(protocol.writeMessage(message));
}
const parsed = (input.parse || []).map((hex) => protocol.parseMessages(fromHex(hex), NullLogger.instance));

process.stdout.write(JSON.stringify({ written, parsed }, replacer));
