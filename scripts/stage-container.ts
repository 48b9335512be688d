/**
 * The model server image's build step, runnable without Docker: writes the context the runtime stage of
 * lambda/container/Dockerfile copies (app/ and model/). The Dockerfile's app-source stage runs exactly this.
 *
 *   npm run stage:container -- --arch arm64|amd64|x64 --out DIR [--model MODEL_DIR]
 */
import { parseArgs } from 'node:util';
import { mb } from '../lib/bundling';
import { serverArch, stageModelServer } from '../lib/container-image';
import { readModelFolder } from '../lib/model-folder';

function main(): number {
  const { values } = parseArgs({
    options: { arch: { type: 'string' }, out: { type: 'string' }, model: { type: 'string' } },
    strict: true,
  });
  if (!values.arch || !values.out) {
    process.stderr.write('usage: stage-container --arch arm64|amd64 --out DIR [--model MODEL_DIR]\n');
    return 2;
  }
  const arch = serverArch(values.arch);
  process.stderr.write(`stage-container: bundling the server for linux/${arch} into ${values.out} ...\n`);
  const started = performance.now();
  // Fails on a manifest whose sha256 is not the model's: a wrong file is never baked in.
  const model = values.model === undefined ? undefined : readModelFolder(values.model);
  const stats = stageModelServer({ arch, outDir: values.out, model });
  process.stderr.write(
    `stage-container: server ${mb(stats.serverBytes)}, onnxruntime ${mb(stats.onnxRuntimeBytes)}, model ${values.model ? mb(stats.modelBytes) : 'none (MODEL_URI at run time)'}, in ${Math.round(performance.now() - started)} ms\n`,
  );
  return 0;
}

try {
  process.exitCode = main();
} catch (err) {
  process.stderr.write(`stage-container: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
