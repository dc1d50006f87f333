// Endpoint options and authentication expiry with the official client.
// node endpoints.mjs <scenario> <baseUrl>: prints the scenario's result (JSON) last.
import assert from "node:assert/strict";
import { signalR, inbox, sleep, expectError } from "./lib.mjs";

function build(base, hub, options) {
  return new signalR.HubConnectionBuilder()
    .withUrl(base + hub, options)
    .configureLogging(signalR.LogLevel.None)
    .build();
}

async function shortLogin(base, name, ttl) {
  const response = await fetch(`${base}/short-login?name=${name}&ttl=${ttl}`);
  assert.equal(response.status, 200);
  return response.json();
}

const scenarios = {
  // One hub on two URLs: one WebSockets only, one long polling only for signed-in users.
  async twoUrls(base) {
    const user = await shortLogin(base, "ep-two-urls", 3600);
    const ws = build(base, "/hubs/ep/ws", { transport: signalR.HttpTransportType.WebSockets });
    const lp = build(base, "/hubs/ep/lp", {
      transport: signalR.HttpTransportType.LongPolling,
      accessTokenFactory: () => user.token,
    });
    const lpRefusedAnonymous = await expectError(
      build(base, "/hubs/ep/lp", { transport: signalR.HttpTransportType.LongPolling }).start(),
    );
    const [wsBox, lpBox] = [inbox(ws), inbox(lp)];
    await Promise.all([ws.start(), lp.start()]);
    const wsInfo = await ws.invoke("ConnectionInfo");
    const lpInfo = await lp.invoke("ConnectionInfo");
    await lp.invoke("SendToAll", "from lp");
    await Promise.all([wsBox.wait(1), lpBox.wait(1)]);
    await ws.invoke("Join", "both");
    await lp.invoke("Join", "both");
    await ws.invoke("SendToGroup", "both", "to both");
    await Promise.all([wsBox.wait(2), lpBox.wait(2)]);
    await lp.invoke("SendToClient", wsInfo.connectionId, "to ws");
    await wsBox.wait(3);
    await sleep(300); // nothing else arrives
    await Promise.all([ws.stop(), lp.stop()]);
    return {
      wsTransport: wsInfo.transport,
      lpTransport: lpInfo.transport,
      ws: wsBox.items,
      lp: lpBox.items,
      lpRefusedAnonymous,
    };
  },

  // CLOSE_ON_AUTHENTICATION_EXPIRATION: the connection ends when its token expires.
  async expiry(base) {
    const user = await shortLogin(base, "ep-expiry", 4);
    const connection = build(base, "/hubs/ep/expiring", { accessTokenFactory: () => user.token });
    const closed = new Promise((resolve) => connection.onclose((error) => resolve(error)));
    const opened = Date.now();
    await connection.start();
    assert.equal(await connection.invoke("Echo", "still valid"), "still valid");
    const error = await Promise.race([
      closed,
      sleep(30000).then(() => {
        throw new Error("not closed 30 s after the token expired");
      }),
    ]);
    const closedAfter = (Date.now() - opened) / 1000;
    const restart = await expectError(
      build(base, "/hubs/ep/expiring", { accessTokenFactory: () => user.token }).start(),
    );
    return { closedAfter, error: error ? String(error) : null, restart };
  },
};

const [name, base] = process.argv.slice(2);
const scenario = scenarios[name];
if (!scenario) {
  console.error(`unknown scenario ${name}`);
  process.exit(2);
}
const timer = setTimeout(() => {
  console.error(`scenario ${name} did not finish in 55 s`);
  process.exit(3);
}, 55000);
try {
  const result = await scenario(base);
  clearTimeout(timer);
  console.log(JSON.stringify(result ?? null));
  process.exit(0);
} catch (e) {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
}
