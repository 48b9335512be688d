/**
 * Bench child for cold starts: a fresh process that requires the handler
 * module (which starts loading the model at import), awaits `ready`, and
 * answers one request. Times are performance.now(), i.e. ms since this process
 * started. Run through tsx, or bundled by esbuild and run by plain node.
 *
 * It also reports whether the S3 SDK got loaded (it should not be, for a local model).
 *
 * In `deps` mode it instead requires the handler's heavy dependencies one by
 * one, to show which of them the import time goes to.
 */
import { createRequire } from 'node:module';
import * as path from 'node:path';
import type * as Api from '../lambda/handlers/api';
import { childArg, errorText, lambdaContext, restEvent, sendToParent } from './common';

// Only this module and the tiny common.ts load before this line.
const scriptStartMs = performance.now();

export type ColdChildArgs =
  | { readonly mode: 'handler'; readonly handlerModule: string; readonly path: string; readonly body: string }
  | { readonly mode: 'deps'; readonly modules: readonly string[] };

const load = createRequire(__filename);

async function main(): Promise<void> {
  const args = childArg<ColdChildArgs>();
  if (args.mode === 'deps') {
    const modules = args.modules.map((m) => {
      const t = performance.now();
      load(m);
      return { module: m, ms: performance.now() - t };
    });
    await sendToParent({ kind: 'deps', scriptStartMs, modules });
    return;
  }
  const api = load(args.handlerModule) as typeof Api;
  const importedMs = performance.now();
  await api.ready;
  const readyMs = performance.now();
  // The S3 SDK is imported on first use; a local model should never load it.
  const s3SdkLoaded = Object.keys(load.cache).some((k) =>
    k.includes(`${path.sep}@aws-sdk${path.sep}client-s3${path.sep}`),
  );
  await sendToParent({ kind: 'ready', readyMs });
  const t = performance.now();
  const res = await api.handler(restEvent('POST', args.path, args.body, false), lambdaContext());
  const firstRequestMs = performance.now() - t;
  await sendToParent({
    kind: 'cold',
    scriptStartMs,
    importedMs,
    readyMs,
    firstRequestMs,
    firstStatus: res.statusCode ?? 0,
    s3SdkLoaded,
  });
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    await sendToParent({ kind: 'error', message: errorText(err) }).catch(() => undefined);
    process.exit(1);
  },
);
