// The official client inside headless Chromium, over every transport it offers:
// node browser_matrix.mjs <baseUrl>  -> prints one JSON line with what each run observed.
import { chromium } from "playwright-core";

const [base] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM_PATH || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
const results = {};
try {
  const page = await browser.newPage();
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(`${base}/client/`);
  const combos = [
    ["WebSockets", "json"], ["ServerSentEvents", "json"], ["LongPolling", "json"],
    ["WebSockets", "messagepack"], ["LongPolling", "messagepack"],
  ];
  for (const [transport, protocol] of combos) {
    results[`${transport}/${protocol}`] = await page.evaluate(async ([transport, protocol]) => {
      let builder = new signalR.HubConnectionBuilder()
        .withUrl("/hubs/test", { transport: signalR.HttpTransportType[transport] })
        .configureLogging(signalR.LogLevel.None);
      if (protocol === "messagepack") builder = builder.withHubProtocol(new signalR.protocols.msgpack.MessagePackHubProtocol());
      const c = builder.build();
      const received = [];
      c.on("Receive", (route, message) => { received.push([route, message]); });
      await c.start();
      const info = await c.invoke("ConnectionInfo");
      const echo = await c.invoke("Echo", { text: "héllo", n: [1, 2] });
      const items = [];
      await new Promise((resolve, reject) => c.stream("Counter", 3, 0.01).subscribe({
        next: (i) => items.push(i), complete: resolve, error: reject }));
      const subject = new signalR.Subject();
      const upload = c.invoke("Upload", "up:", subject);
      subject.next("a"); subject.next("b"); subject.complete();
      const uploaded = await upload;
      await c.invoke("SendToCaller", "pushed");
      for (let i = 0; i < 100 && received.length < 1; i++) await new Promise((r) => setTimeout(r, 20));
      let error = null;
      try { await c.invoke("FailHub"); } catch (e) { error = e.message; }
      await c.stop();
      return { transport: info.transport, protocol: info.protocol, echo, items, uploaded, received, error };
    }, [transport, protocol]);
  }
  results.problems = problems;
} finally {
  await browser.close();
}
console.log(JSON.stringify(results));
