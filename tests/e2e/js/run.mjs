// Runs one named scenario against a server: node run.mjs <scenario> <baseUrl>
// Prints the scenario's result as the last line (JSON); exits 1 with the error on failure.
import * as scenarios from "./scenarios.mjs";

const [name, base] = process.argv.slice(2);
const scenario = scenarios[name];
if (!scenario) {
  console.error(`unknown scenario ${name}`);
  process.exit(2);
}
const timer = setTimeout(() => {
  console.error(`scenario ${name} did not finish in 45 s`);
  process.exit(3);
}, 45000);
try {
  const result = await scenario(base);
  clearTimeout(timer);
  console.log(JSON.stringify(result ?? null));
  process.exit(0);
} catch (e) {
  console.error(e && e.stack ? e.stack : String(e));
  process.exit(1);
}
