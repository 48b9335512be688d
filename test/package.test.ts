/**
 * The published package, used the way another team uses it: `npm pack` this repository, install the tarball
 * into a fresh CDK app outside it, and synthesize an OnnxModelEndpoint there with its defaults.
 */
import { execFileSync } from 'node:child_process';
import { builtinModules } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const ROOT = path.resolve(__dirname, '..');
const ours = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as PackageJson;

interface PackageJson {
  name: string;
  version: string;
  main: string;
  types: string;
  exports: Record<string, string | Record<string, string>>;
  dependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

interface PackResult {
  filename: string;
  size: number;
  unpackedSize: number;
  files: { path: string }[];
}

/** What the consumer app records about its own run (see APP_JS). */
interface SynthReport {
  packageMain: string;
  loaded: string[];
  touched: string[];
  bundled: string[];
}

interface Template {
  Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
}

/**
 * A consumer CDK app in plain JavaScript. Besides the synth, it records what it used, without changing
 * behaviour: every path it hands to `fs`, every module it loaded, and every file esbuild read (the
 * bundler's own metafile, switched on by wrapping the esbuild module the package will load).
 */
const APP_JS = `
const fs = require('node:fs');
const path = require('node:path');
const [outdir, reportFile] = process.argv.slice(2);

const touched = [];
const record = (names, count) => {
  for (const name of names) {
    const original = fs[name];
    fs[name] = function (...args) {
      for (const arg of args.slice(0, count)) if (typeof arg === 'string') touched.push(path.resolve(arg));
      return original.apply(this, args);
    };
  }
};
record(['readFileSync', 'readdirSync', 'statSync', 'lstatSync', 'existsSync', 'openSync', 'mkdtempSync'], 1);
record(['copyFileSync', 'cpSync'], 2);

const pkgDir = path.dirname(require.resolve('model-deploy-kit/package.json'));
const esbuildFile = require.resolve('esbuild', { paths: [path.join(pkgDir, 'dist', 'lib')] });
const esbuild = require(esbuildFile);
const bundled = [];
require.cache[esbuildFile].exports = {
  ...esbuild,
  buildSync(options) {
    const result = esbuild.buildSync({ ...options, metafile: true });
    const cwd = options.absWorkingDir ?? process.cwd();
    for (const input of Object.keys(result.metafile.inputs)) {
      if (!input.startsWith('<')) bundled.push(path.resolve(cwd, input));
    }
    return result;
  },
};

const cdk = require('aws-cdk-lib');
const {
  BatchInference,
  ModelSource,
  OnnxModelEndpoint,
  ServingBackend,
  StreamDestination,
  StreamInference,
  StreamSource,
} = require('model-deploy-kit');

const app = new cdk.App({ outdir });
const stack = new cdk.Stack(app, 'Consumer');
new OnnxModelEndpoint(stack, 'Fraud', { modelDir: path.join(pkgDir, 'models', 'iris') });
const containerStack = new cdk.Stack(app, 'ConsumerContainer');
new OnnxModelEndpoint(containerStack, 'Fraud', {
  modelDir: path.join(pkgDir, 'models', 'iris'),
  backend: ServingBackend.CONTAINER,
});
// The release parts: an A/B challenger from the registry, and a CodeDeploy release with its pre-traffic hook.
new OnnxModelEndpoint(new cdk.Stack(app, 'ConsumerAb'), 'Fraud', {
  modelDir: path.join(pkgDir, 'models', 'iris'),
  challenger: { modelSource: ModelSource.fromRegistry('fraud-models'), weight: 0.1 },
});
new OnnxModelEndpoint(new cdk.Stack(app, 'ConsumerRelease'), 'Fraud', {
  modelDir: path.join(pkgDir, 'models', 'iris'),
  release: {},
});
// Data capture and the drift job: the capture transform and drift handlers.
new OnnxModelEndpoint(new cdk.Stack(app, 'ConsumerMonitoring'), 'Fraud', {
  modelDir: path.join(pkgDir, 'models', 'iris'),
  capture: { samplePercent: 10 },
  drift: {},
});
// Batch jobs and queue-driven predictions.
new BatchInference(new cdk.Stack(app, 'ConsumerBatch'), 'Scoring', {
  modelDir: path.join(pkgDir, 'models', 'iris'),
});
new StreamInference(new cdk.Stack(app, 'ConsumerStream'), 'Events', {
  modelDir: path.join(pkgDir, 'models', 'iris'),
  source: StreamSource.sqs(),
  destination: StreamDestination.sqs(),
});
app.synth();

fs.writeFileSync(
  reportFile,
  JSON.stringify({ packageMain: require.resolve('model-deploy-kit'), loaded: Object.keys(require.cache), touched, bundled }),
);
`;

/** The same construct from TypeScript, resolved through the package's `exports` (module nodenext). */
const APP_TS = `
import { App, Stack } from 'aws-cdk-lib';
import { ModelDelivery, OnnxModelEndpoint, type OnnxModelEndpointProps } from 'model-deploy-kit';

declare const modelDir: string;
const props: OnnxModelEndpointProps = { modelDir, delivery: ModelDelivery.BUNDLED };
const endpoint = new OnnxModelEndpoint(new Stack(new App(), 'Consumer'), 'Fraud', props);
export const url: string = endpoint.api.url;
`;

/** Child processes get no npm_* variables: an outer `npm test` sets npm_config_local_prefix to this repository. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^npm_/i.test(key) && key !== 'NODE_OPTIONS') env[key] = value;
  }
  return { ...env, ...extra };
}

function run(command: string, args: string[], cwd: string, extraEnv?: Record<string, string>): string {
  try {
    return execFileSync(command, args, {
      cwd,
      env: cleanEnv(extraEnv),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 * 1024 * 1024,
    });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(
      `${command} ${args.join(' ')} failed in ${cwd}:\n${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`,
    );
  }
}

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const p = path.join(dir, entry.name);
    return entry.isDirectory() ? walk(p) : [p];
  });
}

const inside = (dir: string, p: string) => p === dir || p.startsWith(dir + path.sep);

let work: string;
let appDir: string;
let outDir: string;
let installed: string;
let packed: PackResult;
let report: SynthReport;
let template: Template;
const timings: Record<string, number> = {};

function timed<T>(name: string, fn: () => T): T {
  const start = process.hrtime.bigint();
  try {
    return fn();
  } finally {
    timings[name] = Number((process.hrtime.bigint() - start) / 1_000_000n);
  }
}

beforeAll(() => {
  work = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-package-')));
  appDir = path.join(work, 'app');
  outDir = path.join(appDir, 'cdk.out');
  installed = path.join(appDir, 'node_modules', 'model-deploy-kit');

  // prepack builds dist/ first.
  const packJson = timed('pack', () => run('npm', ['pack', '--json', '--pack-destination', work], ROOT));
  packed = (JSON.parse(packJson) as PackResult[])[0] as PackResult;

  fs.mkdirSync(appDir);
  const consumer = {
    name: 'consumer-app',
    private: true,
    dependencies: {
      'aws-cdk-lib': ours.devDependencies?.['aws-cdk-lib'],
      constructs: ours.devDependencies?.constructs,
      'model-deploy-kit': `file:${path.join(work, packed.filename)}`,
    },
  };
  fs.writeFileSync(path.join(appDir, 'package.json'), JSON.stringify(consumer, null, 2));
  // Its postinstall downloads from a host this machine cannot reach; the bundler needs none of it.
  fs.writeFileSync(path.join(appDir, '.npmrc'), 'onnxruntime-node-install=skip\n');
  fs.writeFileSync(path.join(appDir, 'app.js'), APP_JS);
  fs.writeFileSync(path.join(appDir, 'app.ts'), APP_TS);
  timed('install', () => run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline'], appDir));

  // The bundler's scratch folders land in the temp dir: keep them inside `work` so they go with it.
  const scratch = path.join(work, 'tmp');
  fs.mkdirSync(scratch);
  const reportFile = path.join(work, 'report.json');
  timed('synth', () =>
    run(process.execPath, ['app.js', outDir, reportFile], appDir, { TMPDIR: scratch, TMP: scratch }),
  );
  report = JSON.parse(fs.readFileSync(reportFile, 'utf8')) as SynthReport;
  template = JSON.parse(fs.readFileSync(path.join(outDir, 'Consumer.template.json'), 'utf8')) as Template;
}, 300_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
  if (Object.keys(timings).length) console.log(`package test timings (ms): ${JSON.stringify(timings)}`);
});

describe('npm pack', () => {
  it('holds the compiled library, handlers, CLI, declarations and example model, and nothing else', () => {
    const files = packed.files.map((f) => f.path);
    const allowed =
      /^(dist\/(lib|lambda|bin)\/.+\.(js|d\.ts)|lambda\/container\/Dockerfile|models\/iris\/model\.(onnx|json)|package\.json|README\.md)$/;
    expect(files.filter((f) => !allowed.test(f))).toEqual([]);
    expect(files).toEqual(
      expect.arrayContaining([
        'dist/lib/index.js',
        'dist/lib/index.d.ts',
        'dist/lambda/handlers/api.js',
        'dist/lambda/handlers/publish-model.js',
        'dist/lambda/server/main.js',
        'dist/lambda/server/healthcheck.js',
        'lambda/container/Dockerfile',
        'dist/bin/mdk.js',
        'models/iris/model.onnx',
        'models/iris/model.json',
      ]),
    );
    // The repository's own CDK app is not part of the package.
    expect(files.filter((f) => f.startsWith('dist/bin/app.'))).toEqual([]);
    const libJs = files.filter((f) => f.startsWith('dist/lib/') && f.endsWith('.js'));
    expect(libJs.filter((f) => !files.includes(f.replace(/\.js$/, '.d.ts')))).toEqual([]);
  });

  it('points main, types and exports at files it holds', () => {
    const files = new Set(packed.files.map((f) => f.path));
    const root = ours.exports['.'] as Record<string, string>;
    for (const target of [ours.main, ours.types, root.types, root.default]) {
      expect(files).toContain(path.posix.normalize(target as string));
    }
  });
});

describe('a consumer CDK app that installs the tarball', () => {
  it('resolves its own installed copy of model-deploy-kit, not a link into this repository', () => {
    expect(inside(ROOT, work)).toBe(false);
    expect(fs.lstatSync(installed).isSymbolicLink()).toBe(false);
    expect(fs.realpathSync(installed)).toBe(installed);
    expect(report.packageMain).toBe(path.join(installed, 'dist', 'lib', 'index.js'));
    const pkg = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')) as PackageJson;
    expect(pkg.version).toBe(ours.version);
  });

  it("shares the app's single aws-cdk-lib and constructs (peer dependencies)", () => {
    for (const name of ['aws-cdk-lib', 'constructs']) {
      expect(fs.existsSync(path.join(appDir, 'node_modules', name, 'package.json'))).toBe(true);
      expect(fs.existsSync(path.join(installed, 'node_modules', name))).toBe(false);
    }
  });

  it('gets JavaScript that requires only dependencies, peer dependencies and Node built-ins', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8')) as PackageJson;
    const declared = new Set([
      ...Object.keys(pkg.dependencies ?? {}),
      ...Object.keys(pkg.peerDependencies ?? {}),
    ]);
    const builtins = new Set(builtinModules);
    const undeclared = new Set<string>();
    for (const file of walk(path.join(installed, 'dist')).filter((f) => f.endsWith('.js'))) {
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/\brequire\(\s*["']([^"']+)["']\s*\)/g)) {
        const spec = m[1] as string;
        if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
        const name = spec
          .split('/')
          .slice(0, spec.startsWith('@') ? 2 : 1)
          .join('/');
        if (!declared.has(name)) undeclared.add(`${name} (${path.relative(installed, file)})`);
      }
    }
    expect([...undeclared]).toEqual([]);
  });

  it('synthesizes an arm64, Node.js 22+ inference function', () => {
    const fn = inferenceFunction();
    const runtime = /^nodejs(\d+)\.x$/.exec(fn.Runtime as string);
    expect(Number(runtime?.[1])).toBeGreaterThanOrEqual(22);
    expect(fn.Architectures).toEqual(['arm64']);
    expect(fn.Handler).toBe('index.handler');
  });

  it('bundles the handler and onnxruntime-node for linux/arm64 only', () => {
    const asset = inferenceAsset();
    expect(fs.existsSync(path.join(asset, 'index.mjs'))).toBe(true);
    const ort = path.join(asset, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
    expect(fs.readdirSync(ort)).toEqual(['linux']);
    expect(fs.readdirSync(path.join(ort, 'linux'))).toEqual(['arm64']);
    expect(fs.existsSync(path.join(ort, 'linux', 'arm64', 'onnxruntime_binding.node'))).toBe(true);
    const files = walk(asset);
    expect(files.filter((f) => /[\\/](darwin|win32|x64)[\\/]/.test(path.relative(asset, f)))).toEqual([]);
    const bytes = files.reduce((sum, f) => sum + fs.statSync(f).size, 0);
    expect(bytes).toBeLessThan(250 * 1024 * 1024);
  });

  it('bundles every handler from the installed package and reads nothing from this repository', () => {
    const handlers = path.join(installed, 'dist', 'lambda', 'handlers');
    expect(report.bundled).toEqual(
      expect.arrayContaining(
        [
          'api',
          'publish-model',
          'publish-variant',
          'resolve-model',
          'pre-traffic-hook',
          'batch-object',
          'batch-items',
          'batch-summary',
          'stream',
          'capture-transform',
          'drift',
        ].map((h) => path.join(handlers, `${h}.js`)),
      ),
    );
    expect(report.bundled.filter((p) => !inside(appDir, p))).toEqual([]);
    // The onnxruntime binary in the asset is the consumer's own copy.
    const binarySources = report.touched.filter((p) => p.endsWith('onnxruntime_binding.node'));
    expect(binarySources).toContain(
      path.join(
        appDir,
        'node_modules',
        'onnxruntime-node',
        'bin',
        'napi-v6',
        'linux',
        'arm64',
        'onnxruntime_binding.node',
      ),
    );
    // The rest are its copies: the bundler's scratch folder and the cloud assembly.
    expect(binarySources.filter((p) => !inside(work, p))).toEqual([]);
    expect(report.loaded.filter((p) => !inside(appDir, p))).toEqual([]);
    expect(report.touched.filter((p) => inside(ROOT, p))).toEqual([]);
  });

  it('stages the container image context from the installed package: its Dockerfile, the server, onnxruntime for linux/arm64 only', () => {
    const manifest = JSON.parse(
      fs.readFileSync(path.join(outDir, 'ConsumerContainer.assets.json'), 'utf8'),
    ) as {
      dockerImages: Record<
        string,
        { source: { directory: string; platform?: string; dockerBuildArgs?: Record<string, string> } }
      >;
    };
    const images = Object.values(manifest.dockerImages);
    expect(images).toHaveLength(1);
    const source = (images[0] as (typeof images)[number]).source;
    expect(source.platform).toBe('linux/arm64');
    expect(source.dockerBuildArgs).toEqual({ APP_SOURCE: 'staged' });
    const context = path.join(outDir, source.directory);
    expect(fs.readFileSync(path.join(context, 'Dockerfile'), 'utf8')).toBe(
      fs.readFileSync(path.join(installed, 'lambda', 'container', 'Dockerfile'), 'utf8'),
    );
    expect(fs.readdirSync(path.join(context, 'app')).sort()).toEqual([
      'healthcheck.mjs',
      'index.mjs',
      'node_modules',
    ]);
    const ort = path.join(context, 'app', 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
    expect(fs.readdirSync(path.join(ort, 'linux'))).toEqual(['arm64']);
    // The S3 delivery default: no model in the image.
    expect(fs.readdirSync(path.join(context, 'model'))).toEqual(['.no-baked-model']);
    const server = path.join(installed, 'dist', 'lambda', 'server');
    expect(report.bundled).toEqual(
      expect.arrayContaining([path.join(server, 'main.js'), path.join(server, 'healthcheck.js')]),
    );
  });

  it('writes a cloud assembly that never mentions this repository', () => {
    const needle = Buffer.from(ROOT);
    const mentions = walk(outDir).filter((f) => fs.readFileSync(f).includes(needle));
    expect(mentions).toEqual([]);
  });

  it('type-checks against the declarations from TypeScript (module nodenext, through exports)', () => {
    const tsconfig = {
      compilerOptions: {
        strict: true,
        noEmit: true,
        skipLibCheck: true,
        module: 'nodenext',
        moduleResolution: 'nodenext',
        target: 'es2022',
        types: [],
      },
      files: ['app.ts'],
    };
    fs.writeFileSync(path.join(appDir, 'tsconfig.json'), JSON.stringify(tsconfig));
    // The compiler is this repository's, used as a tool; what it checks is all in the app.
    const tsc = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    timed('tsc', () => run(process.execPath, [tsc, '-p', '.'], appDir));
  });

  it('runs the mdk CLI from the installed package', () => {
    const out = run(
      process.execPath,
      [path.join(appDir, 'node_modules', '.bin', 'mdk'), 'inspect', path.join(installed, 'models', 'iris')],
      appDir,
    );
    expect(JSON.parse(out)).toMatchObject({ name: 'iris' });
  });
});

function inferenceFunction(): Record<string, unknown> {
  const functions = Object.values(template.Resources).filter(
    (r) =>
      r.Type === 'AWS::Lambda::Function' &&
      (r.Properties.Environment as { Variables?: Record<string, string> } | undefined)?.Variables
        ?.MODEL_NAME === 'iris',
  );
  expect(functions).toHaveLength(1);
  return (functions[0] as { Properties: Record<string, unknown> }).Properties;
}

function inferenceAsset(): string {
  const key = (inferenceFunction().Code as { S3Key: string }).S3Key;
  const manifest = JSON.parse(fs.readFileSync(path.join(outDir, 'Consumer.assets.json'), 'utf8')) as {
    files: Record<string, { source: { path: string; packaging?: string } }>;
  };
  const asset = manifest.files[key.replace(/\.zip$/, '')];
  expect(asset?.source.packaging).toBe('zip');
  return path.join(outDir, (asset as { source: { path: string } }).source.path);
}
