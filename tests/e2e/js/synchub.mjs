// Sync hub methods and typed clients through the official client: node synchub.mjs <baseUrl>
// Prints what the clients received (JSON, last line); exits 1 with the error on failure.
import assert from "node:assert/strict";
import { expectError, inbox, started } from "./lib.mjs";

const base = process.argv[2];
const timer = setTimeout(() => {
  console.error("synchub.mjs did not finish in 45 s");
  process.exit(3);
}, 45000);

async function syncHub() {
  const a = await started(base, "/hubs/sync");
  const b = await started(base, "/hubs/sync");
  const boxA = inbox(a);
  const boxB = inbox(b);
  a.on("GetAnswer", (question) => `a answers ${question}`);
  // b joins: the def method adds it to the group, then the group hears about it.
  assert.equal(await b.invoke("Join", "room"), "room");
  await boxB.wait(1);
  // a (not in the group) says something: group -> b, caller -> a, others -> b.
  assert.equal(await a.invoke("Say", "room", "hello"), "said");
  await boxA.wait(1);
  await boxB.wait(3);
  await b.invoke("Leave", "room");
  await a.invoke("Say", "room", "after leave");
  await boxA.wait(2);
  await boxB.wait(4);
  const answer = await a.invoke("AskCaller", "why?");
  const refused = await expectError(a.invoke("AskOnSyncThread", "why?"));
  await a.stop();
  await b.stop();
  return { a: boxA.items, b: boxB.items, answer, refused };
}

async function typedHub() {
  const a = await started(base, "/hubs/sync-typed");
  const b = await started(base, "/hubs/sync-typed");
  const messagesA = inbox(a, "ReceiveMessage");
  const messagesB = inbox(b, "ReceiveMessage");
  const notices = inbox(a, "notify");
  a.on("GetAnswer", (question) => `typed answer to ${question}`);
  await a.invoke("SendMessage", "ann", "async hi");
  await messagesA.wait(1);
  await messagesB.wait(1);
  await a.invoke("SendMessageSync", "ann", "def hi");
  await messagesB.wait(2);
  await notices.wait(1);
  const asked = await a.invoke("Ask", "q1");
  const askedSync = await a.invoke("AskSync", "q2");
  await a.stop();
  await b.stop();
  return { a: messagesA.items, b: messagesB.items, notices: notices.items, asked, askedSync };
}

try {
  const result = { sync: await syncHub(), typed: await typedHub() };
  clearTimeout(timer);
  console.log(JSON.stringify(result));
  process.exit(0);
} catch (e) {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
}
