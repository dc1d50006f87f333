// Two people (and a bystander) use the demo chat in real Chromium windows.
//
//   node tests/e2e/js/demo_browser.mjs <baseUrl> <screenshotDir>
//
// Everything is checked the way a person would: by the text that shows up on the page.
// The last line printed is a JSON summary of what each window showed; the pytest asserts
// on it. Any failure prints the summary so far with an `error` and exits non-zero.
import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const [baseUrl, shotDir] = process.argv.slice(2);
if (!baseUrl || !shotDir) {
  console.error("usage: node demo_browser.mjs <baseUrl> <screenshotDir>");
  process.exit(2);
}
mkdirSync(shotDir, { recursive: true });

const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";
const WAIT = 15_000;
const ROOM = "lobby";
const result = { screenshots: [], people: {} };
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

const people = [];

/** A person in their own browser context (own cookies, so their own Django session). */
async function logIn(name) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const problems = [];
  page.on("pageerror", (err) => problems.push(`pageerror: ${err.message}`));
  page.on("console", (msg) => {
    if (msg.type() === "error") problems.push(`console: ${msg.text()}`);
  });
  const person = { name, context, page, problems };
  people.push(person);
  await page.goto(`${baseUrl}/`);
  await page.fill("#login-name", name);
  await page.click("#login-form button[type=submit]");
  await page.locator("#me-id").waitFor({ timeout: WAIT });
  await page.locator('#state[data-state="Connected"]').waitFor({ timeout: WAIT });
  person.id = (await page.textContent("#me-id")).trim();
  return person;
}

/** The log line of `route` containing `text`, once it shows up; its visible text. */
async function seen(person, route, text) {
  const line = person.page.locator(`#log li[data-route="${route}"]`).filter({ hasText: text });
  await line.first().waitFor({ timeout: WAIT });
  return (await line.first().innerText()).replace(/\s+/g, " ").trim();
}

/** Whether any log line (any route) contains `text` right now. */
async function shows(person, text) {
  return (await person.page.locator("#log li").filter({ hasText: text }).count()) > 0;
}

async function counterValue(person) {
  const value = Number.parseInt(await person.page.textContent("#counter-value"), 10);
  return Number.isNaN(value) ? null : value;
}

async function shoot(person, label) {
  const file = path.join(shotDir, `${label}.png`);
  await person.page.screenshot({ path: file, fullPage: true });
  result.screenshots.push(file);
}

async function submit(person, form) {
  await person.page.locator(`${form} button[type=submit]`).click();
}

async function scenario() {
  const alice = await logIn("alice");
  const bob = await logIn("bob");
  const carol = await logIn("carol");

  // Both join the same room; alice is told that bob came in.
  for (const person of [alice, bob]) {
    await person.page.fill("#room-name", ROOM);
    await person.page.click("#join-room");
    await person.page.locator("#rooms", { hasText: `#${ROOM}` }).waitFor({ timeout: WAIT });
  }
  result.joinNoticeSeenByAlice = await seen(alice, "room", `bob joined #${ROOM}`);

  // A room message: bob sees it, carol (not in the room) does not.
  const roomText = "Hello lobby, this is alice";
  await alice.page.selectOption("#room-target", ROOM);
  await alice.page.fill("#room-text", roomText);
  await submit(alice, "#room-message-form");
  result.roomMessageSeenByBob = await seen(bob, "room", roomText);

  // A private message to bob, picked from the user list by his id. Alice's page was
  // rendered before bob existed: he reached her list through the hub's Presence message.
  await alice.page.locator(`#private-to option[value="${bob.id}"]`).waitFor({
    state: "attached",
    timeout: WAIT,
  });
  await alice.page.selectOption("#private-to", bob.id);
  const secret = "psst bob, this one is only for you";
  await alice.page.fill("#private-text", secret);
  await submit(alice, "#private-form");
  result.privateSeenByBob = await seen(bob, "private", secret);
  result.privateSeenByAlice = await seen(alice, "private", secret);

  // Hub messages reach each connection in the order they were sent, so once carol shows
  // alice's next broadcast, anything meant for her before it would be on her page too.
  const marker = "everyone: lunch at noon";
  await alice.page.fill("#all-text", marker);
  await submit(alice, "#all-form");
  result.markerSeenByCarol = await seen(carol, "all", marker);
  result.privateSeenByCarol = await shows(carol, secret);
  result.roomMessageSeenByCarol = await shows(carol, roomText);

  // Bob streams the counter, watches it climb, and cancels it.
  await bob.page.fill("#counter-count", "1000");
  await bob.page.fill("#counter-delay", "100");
  await bob.page.click("#counter-start");
  await bob.page.waitForFunction(
    () => Number.parseInt(document.getElementById("counter-value").textContent, 10) >= 2,
    null,
    { timeout: WAIT },
  );
  const first = await counterValue(bob);
  await bob.page.waitForFunction(
    (after) => Number.parseInt(document.getElementById("counter-value").textContent, 10) > after + 2,
    first,
    { timeout: WAIT },
  );
  await shoot(bob, "bob-counter-running");
  await bob.page.click("#counter-cancel");
  const atCancel = await counterValue(bob);
  await sleep(800); // eight ticks' worth: a stream that kept going would show here
  result.counter = {
    first,
    atCancel,
    later: await counterValue(bob),
    status: (await bob.page.textContent("#counter-status")).trim(),
  };

  // Alice asks the sync Django view to broadcast; everybody sees the server's line.
  await alice.page.click("#broadcast");
  result.server = {};
  for (const person of [alice, bob, carol]) {
    result.server[person.name] = await seen(person, "server", "sent by a sync Django view");
  }

  for (const person of people) {
    result.people[person.name] = {
      id: person.id,
      state: await person.page.getAttribute("#state", "data-state"),
      connectionId: (await person.page.textContent("#connection-id")).trim(),
      errorsOnPage: await person.page.locator("#errors li").allInnerTexts(),
      browserProblems: person.problems,
    };
    await shoot(person, person.name);
  }
}

let failed = false;
try {
  await scenario();
} catch (err) {
  failed = true;
  result.error = String(err && err.stack ? err.stack : err);
  for (const person of people) {
    result.people[person.name] ??= {
      id: person.id,
      errorsOnPage: await person.page.locator("#errors li").allInnerTexts().catch(() => []),
      browserProblems: person.problems,
    };
    await shoot(person, `failed-${person.name}`).catch(() => {});
  }
} finally {
  await browser.close();
}
console.log(JSON.stringify(result));
process.exit(failed ? 1 : 0);
