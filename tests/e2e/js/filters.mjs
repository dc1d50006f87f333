// Hub filters through the official client: node filters.mjs <baseUrl>
// FilterTestHub allows three calls per connection and cleans the words of `Say`.
// Prints what the calls returned (JSON, last line); exits 1 with the error on failure.
import assert from "node:assert/strict";
import { expectError, signalR, started } from "./lib.mjs";

const base = process.argv[2];
const timer = setTimeout(() => {
  console.error("filters.mjs did not finish in 45 s");
  process.exit(3);
}, 45000);

try {
  const first = await started(base, "/hubs/filters");
  const said = await first.invoke("Say", "ann", "what the heck, darn it");
  const echoed = [await first.invoke("Echo", 1), await first.invoke("Echo", 2)];
  const refused = [
    await expectError(first.invoke("Echo", 3)),
    await expectError(first.invoke("Say", "ann", "darn")),
  ];
  assert.equal(first.state, signalR.HubConnectionState.Connected);
  const second = await started(base, "/hubs/filters");
  const fresh = await second.invoke("Echo", "own bucket");
  const transport = first.connection.transport.constructor.name;
  await first.stop();
  await second.stop();
  clearTimeout(timer);
  console.log(JSON.stringify({ said, echoed, refused, fresh, transport }));
  process.exit(0);
} catch (e) {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
}
