// End-to-end scenarios run with the official @microsoft/signalr client against a real Daphne.
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { MessagePackHubProtocol } from "@microsoft/signalr-protocol-msgpack";
import {
  connect,
  expectError,
  inbox,
  PROTOCOL,
  signalR,
  sleep,
  started,
  streamAll,
  TRANSPORT,
} from "./lib.mjs";

async function makeUser(base, name, perm = false) {
  const response = await fetch(`${base}/make-user?name=${name}${perm ? "&perm=1" : ""}`);
  assert.equal(response.status, 200);
  return response.json();
}

export async function invokeAndSend(base) {
  const c = await started(base);
  assert.equal(await c.invoke("Echo", "hi"), "hi");
  assert.deepEqual(await c.invoke("echo", { a: [1, 2, null] }), { a: [1, 2, null] });
  assert.equal(await c.invoke("Add", 2, 3), 5);
  assert.equal(await c.invoke("add", 40, 2), 42);
  assert.equal(await c.invoke("SyncEcho", "x"), "sync:x");
  assert.equal(await c.invoke("VoidMethod"), null);
  assert.equal(await c.invoke("Renamed"), "renamed ok");
  const box = inbox(c);
  await c.send("SendToCaller", "via send");
  await box.wait(1);
  assert.deepEqual(box.items[0], ["caller", "via send"]);
  const info = await c.invoke("ConnectionInfo");
  assert.equal(info.connectionId, c.connectionId);
  assert.equal(info.transport, TRANSPORT || "WebSockets");
  assert.equal(info.protocol, PROTOCOL);
  assert.equal(info.hasJoined, true);
  await c.stop();
  return info;
}

export async function values(base) {
  const c = await started(base);
  const v = await c.invoke("Values");
  if (PROTOCOL === "messagepack") {
    // MessagePack carries bytes as bin and datetimes as the timestamp extension.
    assert.deepEqual(Array.from(v.bytes), [0, 1, 104, 105]);
    assert.ok(v.when instanceof Date);
    v.bytes = Buffer.from(v.bytes).toString("base64");
  } else {
    assert.equal(v.bytes, Buffer.from("\x00\x01hi", "latin1").toString("base64"));
  }
  assert.equal(new Date(v.when).toISOString(), "2024-05-06T07:08:09.000Z");
  assert.equal(v.id, "12345678-1234-5678-1234-567812345678");
  assert.equal(v.price, "12.50");
  assert.deepEqual(v.point, { xValue: 1, yValue: 2 });
  assert.deepEqual(v.tags, ["a"]);
  const binary = PROTOCOL === "messagepack";
  const bound = await c.invoke(
    "BindValues",
    binary ? new Date(Date.UTC(2031, 0, 2)) : new Date(Date.UTC(2031, 0, 2)).toISOString(),
    binary ? new Uint8Array(Buffer.from("data")) : Buffer.from("data").toString("base64"),
    { xValue: 3, YValue: 4 },
    ["12345678-1234-5678-1234-567812345678"],
  );
  assert.deepEqual(bound, [2031, "data", 7, "12345678-1234-5678-1234-567812345678"]);
  await c.stop();
  return v;
}

export async function errors(base) {
  const c = await started(base);
  const out = {
    unknown: await expectError(c.invoke("DoesNotExist")),
    privateName: await expectError(c.invoke("_private")),
    baseMember: await expectError(c.invoke("OnConnected")),
    argCount: await expectError(c.invoke("Add", 1)),
    binding: await expectError(c.invoke("Add", "one", 2)),
    failure: await expectError(c.invoke("Fail")),
    hubException: await expectError(c.invoke("FailHub")),
    streamMismatch: await expectError(c.invoke("Counter", 1, 0)),
  };
  // The connection is still usable after every one of them.
  assert.equal(await c.invoke("Echo", "alive"), "alive");
  await c.stop();
  return out;
}

export async function detailedErrors(base) {
  const c = await started(base, "/hubs/detailed");
  const out = {
    argCount: await expectError(c.invoke("Add", 1)),
    binding: await expectError(c.invoke("Add", "one", 2)),
    failure: await expectError(c.invoke("Fail")),
    hubException: await expectError(c.invoke("FailHub")),
    streamFailure: await expectError(streamAll(c, "FailingStream")),
  };
  await c.stop();
  return out;
}

export async function clientTargets(base) {
  const [a, b, c] = await Promise.all([started(base), started(base), started(base)]);
  const [ia, ib, ic] = [inbox(a), inbox(b), inbox(c)];
  const counts = () => [ia.items.length, ib.items.length, ic.items.length];
  const settle = () => sleep(150);

  await a.invoke("SendToOthers", "o");
  await Promise.all([ib.wait(1), ic.wait(1)]);
  await settle();
  assert.deepEqual(counts(), [0, 1, 1]);

  await a.invoke("SendToClient", b.connectionId, "direct");
  await ib.wait(2);
  await a.invoke("SendToClients", [a.connectionId, c.connectionId], "many");
  await Promise.all([ia.wait(1), ic.wait(2)]);
  await a.invoke("SendAllExcept", [b.connectionId], "except");
  await Promise.all([ia.wait(2), ic.wait(3)]);
  await settle();
  assert.deepEqual(counts(), [2, 2, 3]);
  assert.deepEqual(ib.items[1], ["client", "direct"]);
  assert.deepEqual(ia.items[1], ["allExcept", "except"]);

  await Promise.all([a.invoke("Join", "room"), b.invoke("Join", "room"), c.invoke("Join", "other")]);
  await a.invoke("SendToGroup", "room", "g");
  await Promise.all([ia.wait(3), ib.wait(3)]);
  await a.invoke("SendOthersInGroup", "room", "oig");
  await ib.wait(4);
  await a.invoke("SendGroupExcept", "room", [a.connectionId], "ge");
  await ib.wait(5);
  await a.invoke("SendToGroups", ["room", "other"], "gs");
  await Promise.all([ia.wait(4), ib.wait(6), ic.wait(4)]);
  await settle();
  assert.deepEqual(counts(), [4, 6, 4]);
  assert.deepEqual(ib.items.slice(2).map((i) => i[0]), ["group", "othersInGroup", "groupExcept", "groups"]);
  assert.deepEqual(ic.items[3], ["groups", "gs"]);

  await b.invoke("Leave", "room");
  await a.invoke("SendToGroup", "room", "after leave");
  await ia.wait(5);
  await settle();
  assert.deepEqual(counts(), [5, 6, 4]);

  await c.invoke("SendToAll", "everyone");
  await Promise.all([ia.wait(6), ib.wait(7), ic.wait(5)]);
  // Sends to nobody are silent no-ops.
  await a.invoke("SendToGroup", "nobody-here", "x");
  await a.invoke("SendToClient", "no-such-connection", "x");
  await settle();
  assert.deepEqual(counts(), [6, 7, 5]);
  await Promise.all([a.stop(), b.stop(), c.stop()]);
  return { a: ia.items, b: ib.items, c: ic.items };
}

export async function users(base) {
  const alice = await makeUser(base, "alice");
  const bob = await makeUser(base, "bob");
  const opts = (u) => ({ accessTokenFactory: () => u.token });
  const [a1, a2, b1, anon] = await Promise.all([
    started(base, "/hubs/test", opts(alice)),
    started(base, "/hubs/test", opts(alice)),
    started(base, "/hubs/test", opts(bob)),
    started(base),
  ]);
  const boxes = [a1, a2, b1, anon].map((c) => inbox(c));
  assert.equal((await a1.invoke("ConnectionInfo")).user, alice.id);
  assert.equal((await anon.invoke("ConnectionInfo")).user, null);
  await anon.invoke("SendToUser", alice.id, "for alice");
  await Promise.all([boxes[0].wait(1), boxes[1].wait(1)]);
  await anon.invoke("SendToUsers", [alice.id, bob.id], "for both");
  await Promise.all([boxes[0].wait(2), boxes[1].wait(2), boxes[2].wait(1)]);
  await sleep(150);
  assert.deepEqual(boxes.map((b) => b.items.length), [2, 2, 1, 0]);
  await Promise.all([a1.stop(), a2.stop(), b1.stop(), anon.stop()]);
  return { alice: boxes[0].items, bob: boxes[2].items };
}

export async function streaming(base) {
  const c = await started(base);
  const items = await streamAll(c, "Counter", 5, 0.001);
  assert.deepEqual(items, [0, 1, 2, 3, 4]);
  // Cancel a long stream part-way: the server stops the generator.
  const received = [];
  const subscription = c.stream("Counter", 1000, 0.02).subscribe({
    next: (i) => received.push(i),
    complete: () => {},
    error: () => {},
  });
  while (received.length < 3) await sleep(10);
  subscription.dispose();
  let events = [];
  for (let i = 0; i < 100; i++) {
    events = await c.invoke("Events");
    if (events.includes(`counter-closed:${c.connectionId}`)) break;
    await sleep(20);
  }
  assert.ok(events.includes(`counter-closed:${c.connectionId}`), "generator was not closed");
  const countAtCancel = received.length;
  await sleep(200);
  assert.ok(received.length <= countAtCancel + 1);
  assert.ok(received.length < 1000);

  const failed = await expectError(streamAll(c, "FailingStream"));
  assert.equal(failed, "An error occurred on the server while streaming results.");
  await c.stop();
  return { items, cancelledAfter: received.length, failed };
}

export async function uploadStreams(base) {
  const c = await started(base);
  const subject = new signalR.Subject();
  const pending = c.invoke("Upload", "got:", subject);
  for (const item of ["a", "b", "c"]) {
    subject.next(item);
    await sleep(5);
  }
  subject.complete();
  const joined = await pending;
  assert.equal(joined, "got:a,b,c");

  const numbers = new signalR.Subject();
  const sum = c.invoke("UploadSum", numbers);
  for (let i = 1; i <= 50; i++) numbers.next(i);
  numbers.complete();
  assert.equal(await sum, 1275);

  // A stream argument where the method expects none fails that call only.
  const wrong = new signalR.Subject();
  const err = await expectError(c.invoke("Echo", wrong));
  wrong.complete();
  assert.equal(await c.invoke("Echo", "still here"), "still here");
  await c.stop();
  return { joined, sum: 1275, wrong: err };
}

export async function serverClose(base) {
  const c = await started(base);
  const closed = new Promise((resolve) => c.onclose((error) => resolve(error ? error.message : null)));
  await c.send("AbortMe");
  const reason = await closed;
  assert.equal(c.state, signalR.HubConnectionState.Disconnected);

  const refused = connect(base, "/hubs/test?refuse=1");
  const refusedClosed = new Promise((resolve) => refused.onclose((e) => resolve(e ? e.message : null)));
  let startError = null;
  try {
    await refused.start();
  } catch (e) {
    startError = e.message;
  }
  const refusedReason = startError ?? (await refusedClosed);
  return { abort: reason, refused: refusedReason };
}

export async function keepAlive(base) {
  // The WatchHub pings every second: a client with a 2.5 s server timeout stays connected.
  const c = connect(base, "/hubs/watch");
  c.serverTimeoutInMilliseconds = 2500;
  c.keepAliveIntervalInMilliseconds = 1000;
  let closedWith;
  c.onclose((e) => (closedWith = e ? e.message : "clean"));
  await c.start();
  await sleep(4500);
  assert.equal(closedWith, undefined, "the client timed out: the server did not ping");
  assert.equal(await c.invoke("Echo", 1), 1);
  await c.stop();

  // A client that stops pinging is closed by the server after its 3 s client timeout.
  const quiet = connect(base, "/hubs/watch");
  quiet.keepAliveIntervalInMilliseconds = 60000;
  quiet.serverTimeoutInMilliseconds = 60000;
  const closed = new Promise((resolve) => quiet.onclose((e) => resolve(e ? e.message : null)));
  await quiet.start();
  const started_ = Date.now();
  const reason = await closed;
  const after = (Date.now() - started_) / 1000;
  assert.ok(after >= 2.5 && after < 8, `closed after ${after} s`);
  return { reason, after };
}

export async function authorization(base) {
  const carol = await makeUser(base, "carol");
  const admin = await makeUser(base, "root", true);
  const anonymous = connect(base, "/hubs/auth");
  const refused = await expectError(anonymous.start());
  const badToken = await expectError(
    connect(base, "/hubs/auth", { accessTokenFactory: () => "forged.token" }).start(),
  );
  const c = await started(base, "/hubs/auth", { accessTokenFactory: () => carol.token });
  const who = await c.invoke("WhoAmI");
  const denied = await expectError(c.invoke("AdminOnly"));
  await c.stop();
  const a = await started(base, "/hubs/auth", { accessTokenFactory: () => admin.token });
  const allowed = await a.invoke("AdminOnly");
  await a.stop();
  return { refused, badToken, who, denied, allowed };
}

export async function hubContextFromView(base) {
  const [a, b] = await Promise.all([started(base), started(base)]);
  const [ia, ib] = [inbox(a), inbox(b)];
  await b.invoke("Join", "viewers");
  let response = await fetch(`${base}/broadcast?message=hello`);
  assert.equal(await response.text(), "sent");
  await Promise.all([ia.wait(1), ib.wait(1)]);
  response = await fetch(`${base}/broadcast?target=group&group=viewers&message=g`);
  await ib.wait(2);
  response = await fetch(`${base}/broadcast?target=client&id=${a.connectionId}&message=c`);
  await ia.wait(2);
  await sleep(100);
  await Promise.all([a.stop(), b.stop()]);
  return { a: ia.items, b: ib.items };
}

export async function clientResultFromView(base) {
  // The view runs on the worker itself, or on the WSGI site (ASK_SITE) across the backplane.
  const site = process.env.ASK_SITE || base;
  const c = await started(base);
  c.on("GetMessage", (question) => `answer to ${question}`);
  let response = await fetch(`${site}/ask-client?id=${c.connectionId}&question=q1`);
  const answered = { status: response.status, body: await response.json() };
  c.off("GetMessage");
  c.on("GetMessage", () => { throw new Error("no answer here"); });
  response = await fetch(`${site}/ask-client?id=${c.connectionId}&question=q2`);
  const failed = { status: response.status, body: await response.json() };
  await c.stop();
  response = await fetch(`${site}/ask-client?id=${c.connectionId}&question=q3`);
  const gone = { status: response.status, body: await response.json() };
  return { answered, failed, gone };
}

export async function skipNegotiation(base) {
  const c = connect(base, "/hubs/test", {
    skipNegotiation: true,
    transport: signalR.HttpTransportType.WebSockets,
  });
  await c.start();
  const info = await c.invoke("ConnectionInfo");
  assert.equal(info.transport, "WebSockets");
  assert.equal(c.connectionId, null);
  assert.equal(typeof info.connectionId, "string");
  await c.stop();
  return info;
}

export async function parallelInvocations(base) {
  // One invocation at a time per client (the default): a slow call delays the next one,
  // while the connection keeps serving other clients.
  const c = await started(base);
  const other = await started(base);
  const t0 = Date.now();
  const slow = c.invoke("Slow", 0.5);
  const fast = c.invoke("Echo", "queued");
  const otherResult = await other.invoke("Echo", "independent");
  const otherTime = Date.now() - t0;
  const fastResult = await fast;
  const fastTime = Date.now() - t0;
  assert.equal(await slow, "slow done");
  assert.equal(fastResult, "queued");
  assert.equal(otherResult, "independent");
  assert.ok(otherTime < 400, `other client waited ${otherTime} ms`);
  assert.ok(fastTime >= 450, `second invocation ran after ${fastTime} ms`);
  await Promise.all([c.stop(), other.stop()]);
  return { otherTime, fastTime };
}

export async function messageTooLarge(base) {
  const c = await started(base);
  const closed = new Promise((resolve) => c.onclose((e) => resolve(e ? e.message : null)));
  c.invoke("Echo", "x".repeat(40 * 1024)).catch(() => {});
  const reason = await closed;
  return { reason };
}

export async function clientResults(base) {
  const a = await started(base);
  const b = await started(base);
  a.on("GetMessage", (q) => `answer:${q}`);
  b.on("GetMessage", () => {
    throw new Error("nope");
  });
  b.on("Hang", () => new Promise(() => {}));
  const out = {};
  out.caller = await a.invoke("AskCaller");
  // While AskCaller waits on the client, the same client's next invocation still runs.
  out.other = await b.invoke("AskClient", a.connectionId, "GetMessage", null);
  out.error = await a.invoke("AskClient", b.connectionId, "GetMessage", null);
  out.noHandler = await b.invoke("AskClient", a.connectionId, "Missing", null);
  out.timeout = await a.invoke("AskClient", b.connectionId, "Hang", 0.3);
  out.unknown = await a.invoke("AskClient", "no-such-id", "GetMessage", null);
  const pending = a.invoke("AskClient", b.connectionId, "Hang", null);
  await sleep(200);
  await b.stop();
  out.disconnected = await pending;
  out.disconnectedId = b.connectionId;
  await a.stop();
  return out;
}

// A TCP proxy the scenario controls: `cut()` destroys every open connection through it,
// as a network failure would, while the listener stays up for the reconnect.
async function tcpProxy(targetPort) {
  const sockets = new Set();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(client);
    sockets.add(upstream);
    client.pipe(upstream);
    upstream.pipe(client);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.on("error", drop);
    upstream.on("error", drop);
    client.on("close", drop);
    upstream.on("close", drop);
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    cut() {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    close() {
      this.cut();
      server.close();
    },
  };
}

export async function statefulReconnect(base) {
  const target = new URL(base);
  const proxy = await tcpProxy(Number(target.port));
  const via = `http://127.0.0.1:${proxy.port}`;
  const c = connect(via, "/hubs/stateful", {}, (b) => b.withStatefulReconnect());
  const numbers = [];
  c.on("Number", (n) => {
    numbers.push(n);
  });
  let closed = false;
  c.onclose(() => (closed = true));
  await c.start();
  const id = await c.invoke("ConnectionId");
  const total = 60;
  await c.send("SendNumbers", total, 0.02);
  while (numbers.length < 10) await sleep(5);
  proxy.cut(); // the socket dies mid-stream; the server keeps sending into its buffer
  const cutAt = numbers.length;
  await sleep(300);
  for (let i = 0; i < 400 && numbers.length < total; i++) await sleep(25);
  assert.equal(closed, false, "the connection closed instead of resuming");
  const sameId = await c.invoke("ConnectionId");
  assert.equal(sameId, id, "the connection id changed: it was not resumed");
  await c.stop();
  proxy.close();
  const sorted = [...numbers].sort((a, b) => a - b);
  return { count: numbers.length, inOrder: JSON.stringify(sorted) === JSON.stringify(numbers),
           unique: new Set(numbers).size, cutAt, total };
}

export async function statefulNegotiation(base) {
  const response = await fetch(`${base}/hubs/stateful/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: "POST" });
  const body = await response.json();
  const plain = await (await fetch(`${base}/hubs/test/negotiate?negotiateVersion=1&useStatefulReconnect=true`, { method: "POST" })).json();
  return { stateful: body.useStatefulReconnect ?? null, plain: plain.useStatefulReconnect ?? null, firstKey: Object.keys(body)[0] };
}

export async function fallback(base) {
  // /hubs/nows advertises WebSockets but the server refuses the upgrade (as a proxy might).
  const out = {};
  const json = connect(base, "/hubs/nows");
  await json.start();
  out.json = (await json.invoke("ConnectionInfo")).transport;
  await json.stop();
  const binary = connect(base, "/hubs/nows", {}, (b) => b.withHubProtocol(new MessagePackHubProtocol()));
  await binary.start();
  out.messagepack = (await binary.invoke("ConnectionInfo")).transport;
  await binary.stop();
  // /hubs/nows-off does not offer WebSockets at all.
  const off = connect(base, "/hubs/nows-off");
  await off.start();
  out.noWebSockets = (await off.invoke("ConnectionInfo")).transport;
  await off.stop();
  return out;
}

// Clients on two different workers (WORKER_B) and a WSGI site (WSGI) sharing Redis.
export async function crossWorker(base) {
  const other = process.env.WORKER_B;
  const wsgi = process.env.WSGI;
  const alice = await makeUser(base, "xalice");
  const a = await started(base, "/hubs/test", { accessTokenFactory: () => alice.token });
  const b = await started(other, "/hubs/test", { accessTokenFactory: () => alice.token });
  const c = await started(other);
  const [ia, ib, ic] = [inbox(a), inbox(b), inbox(c)];
  const counts = () => [ia.items.length, ib.items.length, ic.items.length];
  const settle = () => sleep(200);
  const out = {};

  await a.invoke("SendToAll", "all");
  await Promise.all([ia.wait(1), ib.wait(1), ic.wait(1)]);
  await a.invoke("SendToOthers", "others");
  await Promise.all([ib.wait(2), ic.wait(2)]);
  await a.invoke("SendToClient", c.connectionId, "client");
  await ic.wait(3);
  await a.invoke("SendToClients", [b.connectionId, c.connectionId], "clients");
  await Promise.all([ib.wait(3), ic.wait(4)]);
  await a.invoke("SendAllExcept", [b.connectionId], "allExcept");
  await Promise.all([ia.wait(2), ic.wait(5)]);
  await settle();
  assert.deepEqual(counts(), [2, 3, 5]);

  // b joins by itself; c is added by a hub call made on the other worker.
  await b.invoke("Join", "xroom");
  await a.invoke("AddOther", c.connectionId, "xroom");
  await a.invoke("SendToGroup", "xroom", "group");
  await Promise.all([ib.wait(4), ic.wait(6)]);
  await a.invoke("SendGroupExcept", "xroom", [c.connectionId], "groupExcept");
  await ib.wait(5);
  await b.invoke("SendOthersInGroup", "xroom", "othersInGroup");
  await ic.wait(7);
  await a.invoke("SendToGroups", ["xroom", "nobody"], "groups");
  await Promise.all([ib.wait(6), ic.wait(8)]);
  await a.invoke("RemoveOther", c.connectionId, "xroom");
  await a.invoke("SendToGroup", "xroom", "after remove");
  await ib.wait(7);
  await settle();
  assert.deepEqual(counts(), [2, 7, 8]);

  // alice has a connection on each worker.
  await c.invoke("SendToUser", alice.id, "user");
  await Promise.all([ia.wait(3), ib.wait(8)]);
  await c.invoke("SendToUsers", [alice.id], "users");
  await Promise.all([ia.wait(4), ib.wait(9)]);

  // The WSGI site sends through the hub context: all, a group, one client.
  for (const query of ["message=wsgi", "target=group&group=xroom&message=wsgi-group",
                       `target=client&id=${c.connectionId}&message=wsgi-client`]) {
    const response = await fetch(`${wsgi}/broadcast?${query}`);
    assert.equal(await response.text(), "sent");
  }
  await Promise.all([ia.wait(5), ib.wait(11), ic.wait(10)]);
  await settle();
  assert.deepEqual(counts(), [5, 11, 10]);

  // Client results across workers.
  c.on("GetMessage", (q) => `from c:${q}`);
  out.result = await a.invoke("AskClient", c.connectionId, "GetMessage", 5);
  out.unknown = await a.invoke("AskClient", "missing-connection", "GetMessage", 5);
  out.a = ia.items;
  out.b = ib.items;
  out.c = ic.items;
  await Promise.all([a.stop(), b.stop(), c.stop()]);
  return out;
}

// An HTTP proxy that sends each request (and each WebSocket upgrade) to the next worker in
// turn: a load balancer with no session affinity.
export async function roundRobinProxy(targets) {
  let next = 0;
  const counts = targets.map(() => 0);
  const pick = () => {
    const index = next++ % targets.length;
    counts[index] += 1;
    return new URL(targets[index]);
  };
  const server = http.createServer((req, res) => {
    const target = pick();
    const upstream = http.request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
      (response) => {
        res.writeHead(response.statusCode, response.headers);
        response.pipe(res);
      },
    );
    upstream.on("error", () => res.destroy());
    res.on("close", () => upstream.destroy());
    req.pipe(upstream);
  });
  server.on("upgrade", (req, socket, head) => {
    const target = pick();
    const upstream = net.connect(Number(target.port), target.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/1.1`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      upstream.write(lines.join("\r\n") + "\r\n\r\n");
      upstream.write(head);
      upstream.pipe(socket);
      socket.pipe(upstream);
    });
    const drop = () => { socket.destroy(); upstream.destroy(); };
    upstream.on("error", drop);
    socket.on("error", drop);
  });
  server.keepAliveTimeout = 1;
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, counts, close: () => server.close() };
}

export async function roundRobin(base) {
  const proxy = await roundRobinProxy([base, process.env.WORKER_B]);
  const direct = await started(process.env.WORKER_B);
  const out = {};
  try {
    const c = connect(proxy.url, "/hubs/test");
    const box = inbox(c);
    await c.start();
    const echoes = [];
    for (let i = 0; i < 6; i++) echoes.push(await c.invoke("Echo", i));
    assert.deepEqual(echoes, [0, 1, 2, 3, 4, 5]);
    await c.invoke("Join", "rr");
    await direct.invoke("SendToGroup", "rr", "from b");
    await direct.invoke("SendToClient", c.connectionId, "direct");
    await box.wait(2);
    const items = await streamAll(c, "Counter", 4, 0.01);
    assert.deepEqual(items, [0, 1, 2, 3]);
    c.on("GetMessage", (q) => `rr:${q}`);
    out.result = await direct.invoke("AskClient", c.connectionId, "GetMessage", 5);
    out.info = await c.invoke("ConnectionInfo");
    out.received = box.items;
    await c.stop();
  } finally {
    await direct.stop();
    proxy.close();
  }
  out.counts = proxy.counts;
  return out;
}

// Session-cookie or bearer clients (AUTH_MODE) through the round-robin proxy: requests that
// land on the worker not holding the connection are forwarded with the user's identity.
export async function roundRobinAuth(base) {
  const mode = process.env.AUTH_MODE;
  const login = await fetch(`${base}/make-user?name=rr-${mode}&perm=1`);
  assert.equal(login.status, 200);
  const { id, token } = await login.json();
  const cookie = login.headers.get("set-cookie").split(";")[0];
  const options = mode === "session" ? { headers: { Cookie: cookie } } : { accessTokenFactory: () => token };
  const proxy = await roundRobinProxy([base, process.env.WORKER_B]);
  const direct = await started(process.env.WORKER_B);
  const out = { id };
  try {
    const auth = connect(proxy.url, "/hubs/auth", options);
    await auth.start();
    out.who = [];
    for (let i = 0; i < 4; i++) out.who.push(await auth.invoke("WhoAmI"));
    out.admin = await auth.invoke("AdminOnly");
    await auth.stop();
    const c = connect(proxy.url, "/hubs/test", options);
    const box = inbox(c);
    await c.start();
    const echoes = [];
    for (let i = 0; i < 6; i++) echoes.push(await c.invoke("Echo", i));
    assert.deepEqual(echoes, [0, 1, 2, 3, 4, 5]);
    out.info = await c.invoke("ConnectionInfo");
    await c.invoke("SendToCaller", "caller");
    await direct.invoke("SendToUser", id, "user");
    await direct.invoke("SendToClient", c.connectionId, "direct");
    await box.wait(3, 15000);
    out.received = box.items.map((m) => m[1]).sort();
    await c.stop();
  } finally {
    await direct.stop();
    proxy.close();
  }
  out.counts = proxy.counts;
  return out;
}

export async function redirect(base) {
  const wsgi = process.env.WSGI;
  const seen = [];
  const clients = [];
  for (let i = 0; i < 4; i++) {
    const c = connect(wsgi, "/site/hubs/test");
    await c.start();
    clients.push(c);
    seen.push(`http://${(await c.invoke("ConnectionInfo")).host}`);
    await sleep(700); // let the workers report their new counts
  }
  assert.equal(await clients[0].invoke("Echo", "via redirect"), "via redirect");
  // Session login on the WSGI site; the redirect carries the user to the worker in a token.
  const login = await fetch(`${wsgi}/make-user?name=redirected-user`);
  const cookie = login.headers.get("set-cookie").split(";")[0];
  const auth = connect(wsgi, "/site/hubs/auth", { headers: { Cookie: cookie } });
  await auth.start();
  const who = await auth.invoke("WhoAmI");
  await auth.stop();
  const anonymousAuthHub = await expectError(connect(wsgi, "/site/hubs/auth").start());
  await Promise.all(clients.map((c) => c.stop()));
  return { workers: seen, who, anonymousAuthHub };
}

export async function connectionLimit(base) {
  const a = await started(base);
  const b = await started(base);
  const response = await fetch(`${base}/hubs/test/negotiate?negotiateVersion=1`, { method: "POST" });
  const third = { status: response.status, retryAfter: response.headers.get("retry-after") };
  let upgradeRefused = false;
  try {
    const c = connect(base, "/hubs/test", { skipNegotiation: true, transport: signalR.HttpTransportType.WebSockets });
    await c.start();
  } catch {
    upgradeRefused = true;
  }
  await b.stop();
  await sleep(100);
  const c = await started(base);
  const afterLeaving = (await c.invoke("Echo", "ok"));
  await Promise.all([a.stop(), c.stop()]);
  return { third, upgradeRefused, afterLeaving };
}

// A well-behaved pair on the caps hub while a hostile connection sits at its caps: the
// echo is answered and a broadcast reaches both.
export async function capsControl(base) {
  const a = await started(base, "/hubs/caps");
  const b = await started(base, "/hubs/caps");
  const boxA = inbox(a);
  const boxB = inbox(b);
  const echo = await a.invoke("Echo", "control echo");
  await b.invoke("SendToAll", "control broadcast");
  await boxA.wait(1, 20000);
  await boxB.wait(1, 20000);
  const streamed = await streamAll(a, "Counter", 3, 0);
  await Promise.all([a.stop(), b.stop()]);
  return { echo, a: boxA.items, b: boxB.items, streamed };
}
