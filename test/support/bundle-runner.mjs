// Loads a synthesized Lambda asset the way Lambda's nodejs runtime does, in a fresh node process, and sends it
// a list of API Gateway events.
//
//   node bundle-runner.mjs <asset dir> <events file> <result file>
//
// The asset's index.mjs awaits the model load at top level, so the import resolves once init is over: its
// duration is the cold init. The result file gets JSON: { initMs, results: [proxy result, ...], nativeLibs },
// where nativeLibs are the onnxruntime shared objects this process loaded (to show where they came from).
// Logs (Powertools JSON, EMF metrics) go to stdout and stderr, as in Lambda.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [assetDir, eventsFile, resultFile] = process.argv.slice(2);
if (!assetDir || !eventsFile || !resultFile) {
  process.stderr.write('usage: node bundle-runner.mjs <asset dir> <events file> <result file>\n');
  process.exit(2);
}

const events = JSON.parse(readFileSync(eventsFile, 'utf8'));
const started = performance.now();
const { handler } = await import(pathToFileURL(path.join(assetDir, 'index.mjs')).href);
const initMs = performance.now() - started;

const results = [];
for (const event of events) results.push(await handler(event));

const nativeLibs = (process.report.getReport().sharedObjects ?? []).filter((p) => /onnxruntime/.test(p));
writeFileSync(resultFile, JSON.stringify({ initMs, results, nativeLibs }));
// Lambda freezes the process after the response; nothing here should keep it alive, but do not wait to find out.
process.exit(0);
