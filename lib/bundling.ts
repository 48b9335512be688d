/**
 * The local bundler behind every Lambda in this library: esbuild for the handler, plus onnxruntime-node
 * pruned to one OS and architecture. No Docker and no network, so `cdk synth` works anywhere `npm ci` did.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { MODEL_FILES, type ModelFile } from './model-folder';

/** Lambda's own limit on an unzipped function, layers included. */
export const LAMBDA_UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024;

/** Where the runtime sources live: `lambda/` beside `lib/` in this repository, `dist/lambda/` in the package. */
export function runtimeEntry(handlerName: string, folder = 'handlers'): string {
  const base = path.join(__dirname, '..', 'lambda', folder, handlerName);
  for (const ext of ['.ts', '.js']) {
    if (fs.existsSync(base + ext)) return base + ext;
  }
  throw new Error(
    `Cannot find the ${handlerName} ${folder === 'handlers' ? 'handler' : 'module'} at ${base}.ts or ${base}.js: the model-deploy-kit package is incomplete (was it built with \`npm run build\`?)`,
  );
}

export interface HandlerBundleOptions {
  /** The handler module: a .ts or .js file that exports `handler`. */
  readonly entry: string;
  /** The target Lambda architecture; picks the onnxruntime-node binaries. */
  readonly architecture: lambda.Architecture;
  /** Ship onnxruntime-node (for `linux/<arch>` only) beside the bundle. */
  readonly includeOnnxRuntime: boolean;
  /** An export of the entry to await at module init (top-level await), so that work finishes inside Lambda's init phase. */
  readonly awaitAtInit?: string;
  /** A model folder to copy into the asset as `model/`. */
  readonly modelDir?: string;
  /** Files to put beside `index.mjs`: name in the asset → path here. They count as the handler's bytes. */
  readonly files?: Readonly<Record<string, string>>;
  /** Fail the synth when the unzipped asset is larger than this. */
  readonly maxBytes: number;
}

/** What a finished bundle measured, for reports and tests. */
export interface BundleStats {
  readonly totalBytes: number;
  readonly handlerBytes: number;
  readonly onnxRuntimeBytes: number;
  readonly modelBytes: number;
}

export function dirBytes(dir: string): number {
  let total = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, entry.name);
    total += entry.isDirectory() ? dirBytes(p) : fs.statSync(p).size;
  }
  return total;
}

export function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function copyFiles(fromDir: string, toDir: string, keep: (name: string) => boolean): void {
  fs.mkdirSync(toDir, { recursive: true });
  for (const entry of fs.readdirSync(fromDir, { withFileTypes: true })) {
    if (entry.isFile() && keep(entry.name))
      fs.copyFileSync(path.join(fromDir, entry.name), path.join(toDir, entry.name));
  }
}

function packageDir(name: string, from: string): string {
  // Resolve the main file, then walk up to the package.json that names it: packages may not export it.
  let dir = path.dirname(require.resolve(name, { paths: [from] }));
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg) && (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name === name)
      return dir;
    const up = path.dirname(dir);
    if (up === dir) throw new Error(`Cannot find the ${name} package folder from ${from}`);
    dir = up;
  }
}

/** Node's names for a Lambda architecture. */
export function nodeArch(architecture: lambda.Architecture): 'arm64' | 'x64' {
  if (architecture.name === lambda.Architecture.ARM_64.name) return 'arm64';
  if (architecture.name === lambda.Architecture.X86_64.name) return 'x64';
  throw new Error(`Unsupported Lambda architecture ${architecture.name}: use ARM_64 or X86_64`);
}

/**
 * onnxruntime-node's JavaScript and the native binaries for one target only. The npm package carries
 * every platform (~290 MB), over Lambda's limit on its own.
 */
export function copyOnnxRuntime(outDir: string, arch: 'arm64' | 'x64', from: string): void {
  const ortDir = packageDir('onnxruntime-node', from);
  const commonDir = packageDir('onnxruntime-common', ortDir);
  const js = (name: string) => name.endsWith('.js') || name === 'package.json';
  const ortOut = path.join(outDir, 'node_modules', 'onnxruntime-node');
  copyFiles(ortDir, ortOut, (n) => n === 'package.json' || n === 'LICENSE');
  copyFiles(path.join(ortDir, 'dist'), path.join(ortOut, 'dist'), js);
  const nativeRel = path.join('bin', 'napi-v6', 'linux', arch);
  if (!fs.existsSync(path.join(ortDir, nativeRel))) {
    throw new Error(`onnxruntime-node at ${ortDir} has no ${nativeRel}: it cannot run on linux ${arch}`);
  }
  copyFiles(path.join(ortDir, nativeRel), path.join(ortOut, nativeRel), () => true);
  const commonOut = path.join(outDir, 'node_modules', 'onnxruntime-common');
  copyFiles(commonDir, commonOut, (n) => n === 'package.json' || n === 'LICENSE');
  fs.cpSync(path.join(commonDir, 'dist', 'cjs'), path.join(commonOut, 'dist', 'cjs'), {
    recursive: true,
    filter: (src) => fs.statSync(src).isDirectory() || js(path.basename(src)),
  });
}

function runEsbuild(options: HandlerBundleOptions, outFile: string): void {
  const spec = `./${path.basename(options.entry).replace(/\.(ts|js)$/, '')}`;
  const contents = options.awaitAtInit
    ? `import * as m from ${JSON.stringify(spec)};\nawait m[${JSON.stringify(options.awaitAtInit)}];\nexport const handler = m.handler;\n`
    : `export { handler } from ${JSON.stringify(spec)};\n`;
  esbuildModule(options.entry, contents, outFile, options.includeOnnxRuntime);
}

/**
 * One ESM file for Node 22 from `contents`, a module that imports `entry` (so the output can re-export
 * or await what it needs). onnxruntime-node stays external when it ships beside the bundle.
 */
export function esbuildModule(
  entry: string,
  contents: string,
  outFile: string,
  onnxRuntimeExternal: boolean,
): void {
  // Loaded lazily: only a real synth needs it.
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require('esbuild') as typeof import('esbuild');
  const resolved = path.resolve(entry);
  esbuild.buildSync({
    stdin: { contents, resolveDir: path.dirname(resolved), sourcefile: 'entry.mjs', loader: 'js' },
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    mainFields: ['module', 'main'],
    outfile: outFile,
    external: onnxRuntimeExternal ? ['onnxruntime-node'] : [],
    minify: true,
    keepNames: true,
    legalComments: 'eof',
    // Bundled CommonJS still calls require() for Node built-ins; ESM has none.
    banner: {
      js: "import { createRequire as __mdkCreateRequire } from 'node:module';\nconst require = __mdkCreateRequire(import.meta.url);",
    },
    logLevel: 'silent',
  });
}

const bundleCache = new Map<string, { dir: string; stats: BundleStats }>();

/**
 * Removes the bundles this process keeps for reuse (tens of MB each in the temp folder). It runs when the
 * process exits; call it sooner where that exit hook never fires, such as in a jest test file.
 */
export function clearBundleCache(): void {
  for (const { dir } of bundleCache.values()) fs.rmSync(dir, { recursive: true, force: true });
  bundleCache.clear();
}

let cleanupRegistered = false;

function removeCacheAtExit(): void {
  if (cleanupRegistered) return;
  cleanupRegistered = true;
  process.once('exit', clearBundleCache);
}

function bundleKey(options: HandlerBundleOptions): string {
  // A file's bytes, not its path, tell two bundles apart: the same path may hold another manifest later.
  const files = Object.entries(options.files ?? {}).map(([name, file]) => [
    name,
    crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex'),
  ]);
  const key = JSON.stringify({ ...options, files, architecture: nodeArch(options.architecture) });
  return crypto.createHash('sha256').update(key).digest('hex');
}

/** Bundles into an empty folder and measures the result. */
function buildBundle(options: HandlerBundleOptions, dir: string): BundleStats {
  const arch = nodeArch(options.architecture);
  runEsbuild(options, path.join(dir, 'index.mjs'));
  let handlerBytes = fs.statSync(path.join(dir, 'index.mjs')).size;
  for (const [name, file] of Object.entries(options.files ?? {})) {
    fs.copyFileSync(file, path.join(dir, name));
    handlerBytes += fs.statSync(file).size;
  }
  let onnxRuntimeBytes = 0;
  if (options.includeOnnxRuntime) {
    copyOnnxRuntime(dir, arch, path.dirname(path.resolve(options.entry)));
    onnxRuntimeBytes = dirBytes(path.join(dir, 'node_modules'));
  }
  let modelBytes = 0;
  if (options.modelDir) {
    copyFiles(options.modelDir, path.join(dir, 'model'), (n) => MODEL_FILES.includes(n as ModelFile));
    modelBytes = dirBytes(path.join(dir, 'model'));
  }
  // The folder holds these three parts and nothing else.
  const totalBytes = handlerBytes + onnxRuntimeBytes + modelBytes;
  if (totalBytes > options.maxBytes) {
    throw new Error(
      `The Lambda asset is ${mb(totalBytes)} unzipped (handler ${mb(handlerBytes)}, onnxruntime ${mb(onnxRuntimeBytes)}, model ${mb(modelBytes)}), over the ${mb(options.maxBytes)} limit: ` +
        'serve a large model from S3 instead of bundling it, or use the Fargate backend',
    );
  }
  return { totalBytes, handlerBytes, onnxRuntimeBytes, modelBytes };
}

/** Bundles into `outDir`, or copies an identical bundle made earlier in this process. */
export function bundleHandler(options: HandlerBundleOptions, outDir: string): BundleStats {
  const key = bundleKey(options);
  let cached = bundleCache.get(key);
  if (!cached) {
    removeCacheAtExit();
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-bundle-'));
    try {
      cached = { dir, stats: buildBundle(options, dir) };
    } catch (err) {
      // A failed bundle (over the size limit, say) is not cached: do not leave its folder behind.
      fs.rmSync(dir, { recursive: true, force: true });
      throw err;
    }
    bundleCache.set(key, cached);
  }
  fs.cpSync(cached.dir, outDir, { recursive: true });
  return cached.stats;
}

/**
 * Lambda code bundled locally at synth. The asset hash is the output's, so a change to the handler,
 * onnxruntime or a bundled model changes it, and nothing else does.
 */
export function bundledCode(
  options: HandlerBundleOptions,
  onBundled?: (stats: BundleStats) => void,
): lambda.Code {
  const sourceDir = path.dirname(path.resolve(options.entry));
  return lambda.Code.fromAsset(sourceDir, {
    assetHashType: cdk.AssetHashType.OUTPUT,
    bundling: {
      // Never pulled: the local bundler below always succeeds or throws.
      image: cdk.DockerImage.fromRegistry('model-deploy-kit/local-bundling-only'),
      // CDK caches staged assets by source folder and bundling options: this keeps distinct bundles apart.
      command: ['mdk-local-bundle', bundleKey(options)],
      local: {
        tryBundle(outputDir: string): boolean {
          const stats = bundleHandler(options, outputDir);
          onBundled?.(stats);
          return true;
        },
      },
    },
  });
}
