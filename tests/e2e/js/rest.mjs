// Calls the REST management API the way a non-Python backend would: Node's fetch, and an
// HS256 token signed with node:crypto (aud = the request URL without its query string).
//
//   echo '[{"method":"POST","base":"http://...","path":"/api/hubs/caps/:send",
//           "query":{"excluded":["c1"]},"body":{"target":"Receive","arguments":["hi"]}}]' |
//     REST_KEY=... node rest.mjs
//
// Each request may set "token": "none" (no header), "wrongKey", "expired" or "otherUrl".
// Prints one JSON array: per request {status, body, headers} (body parsed when JSON).
import { createHmac } from "node:crypto";

const b64url = (data) => Buffer.from(data).toString("base64url");

export function sign(claims, key) {
  const header = b64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = b64url(JSON.stringify(claims));
  const signature = createHmac("sha256", key).update(`${header}.${payload}`).digest("base64url");
  return `${header}.${payload}.${signature}`;
}

function url(base, path, query = {}) {
  const params = new URLSearchParams({ "api-version": "2022-06-01" });
  for (const [name, value] of Object.entries(query)) {
    for (const v of Array.isArray(value) ? value : [value]) params.append(name, v);
  }
  return `${base}${path}?${params}`;
}

async function call(request) {
  const key = process.env.REST_KEY;
  const target = url(request.base, request.path, request.query);
  const audience = target.split("?")[0];
  const now = Math.floor(Date.now() / 1000);
  const headers = { "Content-Type": "application/json" };
  const claims = { aud: audience, exp: now + 300, nameid: "node-backend" };
  if (request.token === "wrongKey") headers.Authorization = `Bearer ${sign(claims, key + "x")}`;
  else if (request.token === "expired")
    headers.Authorization = `Bearer ${sign({ ...claims, exp: now - 3600 }, key)}`;
  else if (request.token === "otherUrl")
    headers.Authorization = `Bearer ${sign({ ...claims, aud: audience + "x" }, key)}`;
  else if (request.token !== "none") headers.Authorization = `Bearer ${sign(claims, key)}`;
  const response = await fetch(target, {
    method: request.method,
    headers,
    body: request.body === undefined ? undefined : JSON.stringify(request.body),
  });
  const text = await response.text();
  let body = text;
  try {
    body = text ? JSON.parse(text) : null;
  } catch {}
  const picked = {};
  for (const name of ["www-authenticate", "allow", "retry-after"]) {
    if (response.headers.has(name)) picked[name] = response.headers.get(name);
  }
  return { status: response.status, body, headers: picked };
}

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const requests = JSON.parse(Buffer.concat(chunks).toString());
const results = [];
for (const request of requests) results.push(await call(request)); // in order, one at a time
console.log(JSON.stringify(results));
