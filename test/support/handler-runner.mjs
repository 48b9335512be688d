// Runs a handler module from lambda/handlers in this process, as a Lambda init and invocations would:
//
//   node --require block-network.cjs --import tsx handler-runner.mjs <handler .ts> <events file> <result file>
//
// The result file gets JSON { results, blocked }: the handler's answers and the connections the blocker refused.
// What the handler writes to stdout (logs, EMF, capture lines) stays on this process's stdout.
import { readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const [handlerFile, eventsFile, resultFile] = process.argv.slice(2);
if (!handlerFile || !eventsFile || !resultFile) {
  process.stderr.write('usage: handler-runner.mjs <handler .ts> <events file> <result file>\n');
  process.exit(2);
}
const events = JSON.parse(readFileSync(eventsFile, 'utf8'));
const mod = await import(pathToFileURL(handlerFile).href);
const handler = mod.handler ?? mod.default?.handler;
await (mod.ready ?? mod.default?.ready);
const results = [];
for (const event of events) results.push(await handler(event));
writeFileSync(resultFile, JSON.stringify({ results, blocked: globalThis.__mdkBlocked ?? null }));
process.exit(0);
