/**
 * `npm run bench`: how much the serving runtime adds to a bare onnxruntime
 * session, in the Lambda handler, in the HTTP server, and at cold start.
 *
 * Every measurement runs in a child process of its own (the handler's logs go
 * to /dev/null there; the server does not share autocannon's event loop), and
 * every loop is bounded by both a count and a time. Prints tables to stdout,
 * progress to stderr, and writes bench/results/latest.json. Always exits 0 when
 * it ran: timings never fail the bench, they are reported as PASS/FAIL.
 *
 * BENCH_QUICK=1 shortens every bound, for checking the bench itself.
 * BENCH_ONLY=handler,server,cold picks phases (all by default); ORT_INTRA_OP_THREADS is honoured as in Lambda.
 */
import autocannon from 'autocannon';
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { defaultThreads } from '../lambda/core/model';
import { buildMlp } from '../models/onnx-builder';
import { Child, killChildren, ROOT, runChild, TSX_ARGS } from './children';
import { cpuShare, cpuSnapshot, type CpuSnapshot } from './cpu';
import {
  buildWorkload,
  inferPath,
  lambdaLikeEnv,
  median,
  type Bound,
  type ColdChildResult,
  type DepsResult,
  type HandlerChildResult,
  type ModelCase,
  type RawChildResult,
  type Stats,
  type VariantResult,
} from './common';
import type { ColdChildArgs } from './cold-child';
import type { HandlerChildArgs } from './handler-child';
import type { ServerChildArgs } from './server-child';
import { fmt, table, type Cell } from './table';

const QUICK = process.env.BENCH_QUICK === '1';
/** Phases to run: handler, server (with the raw baseline), cold. */
const ONLY = new Set((process.env.BENCH_ONLY ?? 'handler,server,cold').split(',').map((x) => x.trim()));
const MLP_LAYERS = [256, 1024, 1024, 10];
const BATCHES = [1, 64];
const CONNECTIONS = [1, 32];
const TARGET_MODEL = 'mlp';

const CFG = {
  handler: {
    rounds: QUICK ? 2 : 7,
    warmup: { maxIters: QUICK ? 50 : 500, maxMs: QUICK ? 100 : 500 },
    block: { maxIters: QUICK ? 200 : 2000, maxMs: QUICK ? 60 : 250 },
    stageRounds: QUICK ? 2 : 5,
    stageBlock: { maxIters: QUICK ? 200 : 2000, maxMs: QUICK ? 60 : 250 },
  },
  raw: {
    warmup: { maxIters: 2000, maxMs: QUICK ? 200 : 1000 },
    measure: { maxIters: 500_000, maxMs: QUICK ? 500 : 3000 },
  },
  server: { warmupS: QUICK ? 0.5 : 1, durationS: QUICK ? 1 : 5 },
  cold: { runs: QUICK ? 2 : 5, depsRuns: QUICK ? 1 : 3 },
  /** Nothing may make the whole bench run longer than this. */
  overallMs: 12 * 60_000,
} as const satisfies {
  handler: { warmup: Bound; block: Bound; stageBlock: Bound; rounds: number; stageRounds: number };
  raw: { warmup: Bound; measure: Bound };
  [k: string]: unknown;
};

const RESULTS = path.join(ROOT, 'bench', 'results');
const child = (name: string) => path.join(ROOT, 'bench', name);

function progress(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

// ---- setup ----

async function prepareModels(tmp: string): Promise<ModelCase[]> {
  const mlpDir = path.join(tmp, 'bench-mlp');
  await fs.mkdir(mlpDir, { recursive: true });
  const bytes = buildMlp({ layers: MLP_LAYERS, seed: 7 });
  await fs.writeFile(path.join(mlpDir, 'model.onnx'), bytes);
  return [
    {
      key: 'iris',
      label: 'iris (735 B)',
      dir: path.join(ROOT, 'models', 'iris'),
      name: 'iris',
      input: 'input',
      features: 4,
      decimals: 1,
    },
    {
      key: TARGET_MODEL,
      label: `mlp ${MLP_LAYERS.join('-')} (${(bytes.length / 1e6).toFixed(1)} MB)`,
      dir: mlpDir,
      name: 'bench-mlp',
      input: 'input',
      features: MLP_LAYERS[0] as number,
    },
  ];
}

interface Machine {
  cpu: string;
  cores: number;
  availableParallelism: number;
  memoryGb: number;
  node: string;
  onnxruntime: string;
  intraOpNumThreads: number;
  intraOpSource: string;
  loader: string;
  platform: string;
}

function machineInfo(): Machine {
  const cpus = os.cpus();
  const fromEnv = process.env.ORT_INTRA_OP_THREADS;
  return {
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    availableParallelism: os.availableParallelism(),
    memoryGb: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    onnxruntime: ort.env.versions.node ?? 'unknown',
    intraOpNumThreads: fromEnv ? Number(fromEnv) : defaultThreads(),
    intraOpSource: fromEnv ? 'ORT_INTRA_OP_THREADS' : 'core default: availableParallelism()',
    loader: `node ${TSX_ARGS.join(' ')} (tsx ${tsxVersion()})`,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  };
}

function tsxVersion(): string {
  try {
    const pkg = readFileSync(path.join(ROOT, 'node_modules', 'tsx', 'package.json'), 'utf8');
    return (JSON.parse(pkg) as { version: string }).version;
  } catch {
    return '?';
  }
}

// ---- 1. handler vs raw session ----

async function benchHandler(model: ModelCase): Promise<HandlerChildResult> {
  progress(`handler: ${model.label} (child process, stdout -> /dev/null)`);
  const args: HandlerChildArgs = { model, batches: BATCHES, ...CFG.handler };
  return runChild(child('handler-child.ts'), args, 'handler', {
    env: lambdaLikeEnv({ MODEL_URI: model.dir }),
    stdout: 'ignore',
    timeoutMs: 240_000,
  });
}

// ---- 2. server throughput ----

/** `mdk serve`'s default --batch-rows (bin/cli/serve.ts). */
const SERVE_BATCH_ROWS = 64;
const SERVER = 'server';
const SERVER_OFF = 'server, batching off';

interface ServerPoint {
  model: string;
  variant: string;
  /** As `mdk serve --batch-rows`: 0 is off. */
  batchRows: number;
  batch: number;
  connections: number;
  seconds: number;
  requests: number;
  perSec: number;
  latencyMeanMs: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  non2xx: number;
  errors: number;
  /** From service.batchingStats() over this point (batching on only): session runs, requests, and their ratio. */
  sessionRuns?: number;
  batchedRequests?: number;
  requestsPerRun?: number;
}

async function cannon(url: string, body: string, connections: number, duration: number) {
  const run = autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    duration,
    timeout: 10,
  });
  // autocannon stops itself after `duration`; this is the bound should it not.
  const guard = setTimeout(() => run.stop(), (duration + 15) * 1000);
  try {
    return await run;
  } finally {
    clearTimeout(guard);
  }
}

async function benchServer(model: ModelCase, batchRows: number): Promise<ServerPoint[]> {
  const variant = batchRows > 1 ? SERVER : SERVER_OFF;
  progress(`${variant}: ${model.label} (server in a child process, autocannon here)`);
  const arg: ServerChildArgs = { model, batchRows };
  const server = new Child(child('server-child.ts'), arg, { stdout: 'ignore', timeoutMs: 180_000 });
  const points: ServerPoint[] = [];
  // The service's counters for this model: runs and the requests they served, so far.
  const counters = async () => (await server.ask('stats', 'batching')).stats[model.name];
  try {
    const { url } = await server.waitFor('listening');
    const target = `${url}${inferPath(model)}`;
    for (const batch of BATCHES) {
      const body = buildWorkload(model, batch).jsonBody;
      await cannon(target, body, 32, CFG.server.warmupS);
      for (const connections of CONNECTIONS) {
        const before = await counters();
        const r = await cannon(target, body, connections, CFG.server.durationS);
        const after = await counters();
        const perSec = r['2xx'] / r.duration;
        const runs = before && after ? after.runs - before.runs : undefined;
        const requests = before && after ? after.requests - before.requests : undefined;
        points.push({
          model: model.key,
          variant,
          batchRows,
          batch,
          connections,
          seconds: r.duration,
          requests: r.requests.total,
          perSec,
          // autocannon's histogram has whole-ms resolution; with a closed loop, Little's law is exact on average.
          latencyMeanMs: (connections / perSec) * 1000,
          latencyP50Ms: r.latency.p50,
          latencyP99Ms: r.latency.p99,
          non2xx: r.non2xx,
          errors: r.errors,
          sessionRuns: runs,
          batchedRequests: requests,
          requestsPerRun: runs && requests !== undefined ? requests / runs : undefined,
        });
      }
    }
  } finally {
    if (server.process.connected) server.send('stop');
    await server.done;
  }
  return points;
}

async function benchRaw(model: ModelCase): Promise<RawChildResult> {
  progress(`raw session runs/s: ${model.label} (own child process)`);
  return runChild(child('raw-child.ts'), { model, batches: BATCHES, ...CFG.raw }, 'raw', {
    stdout: 'ignore',
    timeoutMs: 120_000,
  });
}

// ---- 3. cold start ----

interface ColdRun extends ColdChildResult {
  /** Parent's wall clock from spawn() to the child's 'ready' message. */
  wallToReadyMs: number;
  /** The service's own model-load time (loadModelFiles + session create), from its 'model loaded' log line. */
  modelLoadMs: number | undefined;
}

interface ColdSummary {
  model: string;
  loader: string;
  runs: ColdRun[];
  median: {
    wallToReadyMs: number;
    readyMs: number;
    scriptStartMs: number;
    importMs: number;
    importedToReadyMs: number;
    modelLoadMs: number;
    firstRequestMs: number;
  };
  /** Runs in which the S3 SDK was loaded by the time the (local) model was ready; 0 is the goal. */
  s3SdkLoadedRuns: number;
}

interface Loader {
  readonly label: string;
  readonly nodeArgs: readonly string[];
  readonly script: string;
  readonly handlerModule: string;
}

/** A Lambda ships a bundle, not tsx: also time the handler as esbuild bundles it (onnxruntime-node and the AWS SDK external, as in Lambda). */
async function bundleForCold(dir: string): Promise<Loader> {
  await fs.mkdir(dir, { recursive: true });
  const common = {
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    logLevel: 'warning',
  } as const;
  const handlerModule = path.join(dir, 'handler.cjs');
  const script = path.join(dir, 'cold-child.cjs');
  await build({
    ...common,
    entryPoints: [path.join(ROOT, 'lambda', 'handlers', 'api.ts')],
    outfile: handlerModule,
    external: ['onnxruntime-node', '@aws-sdk/*'],
  });
  await build({ ...common, entryPoints: [child('cold-child.ts')], outfile: script });
  return { label: 'esbuild bundle, plain node', nodeArgs: [], script, handlerModule };
}

function loadMsFromLogs(stdout: string): number | undefined {
  for (const line of stdout.split('\n')) {
    if (!line.includes('model loaded')) continue;
    try {
      const entry = JSON.parse(line) as { message?: string; loadMs?: number };
      if (entry.message === 'model loaded' && typeof entry.loadMs === 'number') return entry.loadMs;
    } catch {
      // not a JSON log line
    }
  }
  return undefined;
}

async function coldOnce(model: ModelCase, loader: Loader): Promise<ColdRun> {
  const arg: ColdChildArgs = {
    mode: 'handler',
    handlerModule: loader.handlerModule,
    path: inferPath(model),
    body: buildWorkload(model, 1).jsonBody,
  };
  const c = new Child(loader.script, arg, {
    nodeArgs: loader.nodeArgs,
    env: lambdaLikeEnv({ MODEL_URI: model.dir }),
    stdout: 'pipe',
    timeoutMs: 60_000,
  });
  await c.waitFor('ready');
  const wallToReadyMs = performance.now() - c.spawnedAt;
  const cold = await c.waitFor('cold');
  await c.done;
  if (cold.firstStatus !== 200) throw new Error(`cold start: first request answered ${cold.firstStatus}`);
  return { ...cold, wallToReadyMs, modelLoadMs: loadMsFromLogs(c.stdout) };
}

async function benchCold(models: readonly ModelCase[], loaders: readonly Loader[]): Promise<ColdSummary[]> {
  const out: ColdSummary[] = [];
  for (const model of models) {
    for (const loader of loaders) {
      progress(`cold start: ${model.label}, ${loader.label} (${CFG.cold.runs} fresh processes)`);
      // One unrecorded start first: it fills the OS file cache and tsx's transform cache.
      await coldOnce(model, loader);
      const runs: ColdRun[] = [];
      for (let i = 0; i < CFG.cold.runs; i++) runs.push(await coldOnce(model, loader));
      const med = (f: (r: ColdRun) => number) => median(runs.map(f));
      out.push({
        model: model.key,
        loader: loader.label,
        runs,
        median: {
          wallToReadyMs: med((r) => r.wallToReadyMs),
          readyMs: med((r) => r.readyMs),
          scriptStartMs: med((r) => r.scriptStartMs),
          importMs: med((r) => r.importedMs - r.scriptStartMs),
          importedToReadyMs: med((r) => r.readyMs - r.importedMs),
          modelLoadMs: med((r) => r.modelLoadMs ?? NaN),
          firstRequestMs: med((r) => r.firstRequestMs),
        },
        s3SdkLoadedRuns: runs.filter((r) => r.s3SdkLoaded).length,
      });
    }
  }
  return out;
}

const DEPS = [
  'onnxruntime-node',
  '@aws-lambda-powertools/logger',
  '@aws-lambda-powertools/metrics',
  '@aws-sdk/client-s3',
];

async function benchDeps(loader: Loader): Promise<{ module: string; ms: number }[]> {
  progress(`cold start: require() time of the handler's dependencies (${CFG.cold.depsRuns} fresh processes)`);
  const runs: DepsResult[] = [];
  for (let i = 0; i < CFG.cold.depsRuns; i++) {
    const arg: ColdChildArgs = { mode: 'deps', modules: DEPS };
    runs.push(
      await runChild(loader.script, arg, 'deps', {
        nodeArgs: loader.nodeArgs,
        stdout: 'ignore',
        timeoutMs: 60_000,
      }),
    );
  }
  return DEPS.map((module, i) => ({ module, ms: median(runs.map((r) => r.modules[i]?.ms ?? NaN)) }));
}

// ---- report ----

interface Results {
  machine: Machine;
  models: ModelCase[];
  handler: HandlerChildResult[];
  raw: RawChildResult[];
  server: ServerPoint[];
  cold: ColdSummary[];
  deps: { module: string; ms: number }[];
  /** CPU taken by other processes during each phase (Linux only): it skews every figure. */
  cpu: { phase: string; others: number | undefined; steal: number | undefined }[];
}

interface Verdict {
  goal: string;
  measured: number;
  target: string;
  /** undefined when not measured (a phase left out by BENCH_ONLY). */
  pass: boolean | undefined;
  detail: string;
}

function find(
  h: readonly HandlerChildResult[],
  model: string,
  batch: number,
  variant: string,
): Stats | undefined {
  return h
    .find((r) => r.model === model)
    ?.variants.find((v: VariantResult) => v.batch === batch && v.variant === variant)?.summary;
}

function verdicts(r: Results): Verdict[] {
  const m = TARGET_MODEL;
  const hj = find(r.handler, m, 64, 'handler-json');
  const rp = find(r.handler, m, 64, 'raw-run+parse');
  const hb = find(r.handler, m, 64, 'handler-binary');
  const rr = find(r.handler, m, 64, 'raw-run');
  const rawB1 = r.raw.find((x) => x.model === m)?.points.find((p) => p.batch === 1);
  const s32 = r.server.find(
    (p) => p.model === m && p.variant === SERVER && p.batch === 1 && p.connections === 32,
  );
  const v = (
    goal: string,
    measured: number,
    limit: number,
    higherIsBetter: boolean,
    detail: string,
  ): Verdict => ({
    goal,
    measured,
    target: `${higherIsBetter ? '>=' : '<='} ${limit.toFixed(2)}`,
    // Not measured (a phase left out by BENCH_ONLY) is neither a pass nor a fail.
    pass: !Number.isFinite(measured) ? undefined : higherIsBetter ? measured >= limit : measured <= limit,
    detail,
  });
  const us = (x: number | undefined) => `${fmt(x, 0)} us`;
  return [
    v(
      'JSON body, batch 64: handler / (session.run + JSON.parse)',
      (hj?.mean ?? NaN) / (rp?.mean ?? NaN),
      1.25,
      false,
      `${us(hj?.mean)} / ${us(rp?.mean)} (means); p50 ratio ${fmt((hj?.p50 ?? NaN) / (rp?.p50 ?? NaN), 2)}`,
    ),
    v(
      'binary extension, batch 64: handler / session.run',
      (hb?.mean ?? NaN) / (rr?.mean ?? NaN),
      1.25,
      false,
      `${us(hb?.mean)} / ${us(rr?.mean)} (means); p50 ratio ${fmt((hb?.p50 ?? NaN) / (rr?.p50 ?? NaN), 2)}`,
    ),
    v(
      `server (batching ${SERVE_BATCH_ROWS}) req/s at 32 connections, batch 1 / raw session runs/s, batch 1`,
      (s32?.perSec ?? NaN) / (rawB1?.perSec ?? NaN),
      0.5,
      true,
      `${fmt(s32?.perSec)} / ${fmt(rawB1?.perSec)} per s; ${fmt(s32?.requestsPerRun, 1)} requests per run`,
    ),
  ];
}

function report(r: Results, verdictList: readonly Verdict[]): string {
  const { machine } = r;
  const out: string[] = [];
  const label = (key: string) => r.models.find((m) => m.key === key)?.label ?? key;
  const h0 = r.handler[0];
  const pct = (x: number | undefined) => (x === undefined ? 'n/a' : `${(x * 100).toFixed(0)}%`);
  const maxOthers = Math.max(0, ...r.cpu.map((c) => c.others ?? 0));
  out.push(
    `model-deploy-kit bench  ${new Date().toISOString()}${QUICK ? '  (BENCH_QUICK: short bounds, figures are rough)' : ''}`,
    `machine  ${machine.cpu}, ${machine.cores} cores (availableParallelism ${machine.availableParallelism}), ${machine.memoryGb} GB, ${machine.platform}`,
    `runtime  node ${machine.node}, onnxruntime-node ${machine.onnxruntime}, intraOpNumThreads ${machine.intraOpNumThreads} (${machine.intraOpSource}), interOp 1, sequential, graph opt 'all'`,
    `children ${machine.loader}`,
    `others   CPU taken by other processes (share of all cores) per phase: ${r.cpu
      .map((c) => `${c.phase} ${pct(c.others)}`)
      .join(', ')}; hypervisor steal: ${r.cpu.map((c) => pct(c.steal)).join(', ')}`,
  );
  if (maxOthers > 0.1) {
    out.push(
      `         WARNING: other work took up to ${pct(maxOthers)} of the CPUs in a phase; figures are noisy.`,
    );
  }
  out.push('');

  if (r.handler.length > 0) {
    out.push(
      `1. Lambda handler (REST API v1 proxy events) vs raw session.run, same process, same tensors. us per request,`,
      `   median of ${CFG.handler.rounds} rounds (variants rotated per round; each block <= ${CFG.handler.block.maxIters} requests or ${CFG.handler.block.maxMs} ms).`,
      `   Log level ${h0?.logLevel ?? '?'}: request log line (logger.debug) ${h0?.logsOn ? 'ON' : 'OFF'}; EMF metrics ${h0?.metricsOn ? 'ON' : 'OFF'}; ` +
        `${fmt(h0?.stdoutLinesPerRequest, 1)} lines / ${fmt(h0?.stdoutBytesPerRequest)} B per request to stdout -> /dev/null.`,
      `   "vs run" = handler mean / raw-run mean. "vs base" = handler / the goal's baseline: JSON vs`,
      `   (run + JSON.parse of the same body), binary vs run alone.`,
      '',
    );
    const hRows: Cell[][] = [];
    for (const h of r.handler) {
      for (const batch of BATCHES) {
        const base = {
          json: find(r.handler, h.model, batch, 'raw-run+parse'),
          binary: find(r.handler, h.model, batch, 'raw-run'),
        };
        for (const v of h.variants.filter((x) => x.batch === batch)) {
          const b =
            v.variant === 'handler-json'
              ? base.json
              : v.variant === 'handler-binary'
                ? base.binary
                : undefined;
          const isHandler = v.variant.startsWith('handler');
          hRows.push([
            label(h.model),
            batch,
            v.variant,
            isHandler ? `${h.logsOn ? 'on' : 'off'}/${h.metricsOn ? 'on' : 'off'}` : '-',
            v.summary.mean,
            v.summary.p50,
            v.summary.p99,
            v.summary.n,
            isHandler ? v.summary.mean / (base.binary?.mean ?? NaN) : undefined,
            b ? v.summary.mean / b.mean : undefined,
            b ? v.summary.p50 / b.p50 : undefined,
          ]);
        }
      }
    }
    out.push(
      table(
        [
          { title: 'model' },
          { title: 'batch' },
          { title: 'variant' },
          { title: 'logs/EMF' },
          { title: 'mean us', decimals: 0 },
          { title: 'p50 us', decimals: 0 },
          { title: 'p99 us', decimals: 0 },
          { title: 'n' },
          { title: 'vs run', decimals: 2, align: 'r' },
          { title: 'vs base (mean)', decimals: 2, align: 'r' },
          { title: '(p50)', decimals: 2, align: 'r' },
        ],
        hRows,
      ),
      '',
    );

    out.push(
      "   Where the handler time goes: the handler's pipeline re-run step by step with the same core functions",
      `   and Powertools setup (mean us per request, median of ${CFG.handler.stageRounds} rounds). Not a stage: service.handle's routing.`,
      '   toHttpRequest passes a JSON body on as the string, and base64-decodes a binary one so its tensor bytes are',
      '   8-byte aligned; parseBody JSON.parses the string or the header, and prepareInference views the aligned bytes.',
      '',
    );
    const cols = [
      { b: 1, f: 'json', title: 'json b1' },
      { b: 1, f: 'binary', title: 'bin b1' },
      { b: 64, f: 'json', title: 'json b64' },
      { b: 64, f: 'binary', title: 'bin b64' },
    ] as const;
    for (const h of r.handler) {
      const stageOf = (b: number, f: string) => h.stages.find((s) => s.batch === b && s.format === f);
      const names = (stageOf(1, 'json')?.stages ?? []).map((s) => s.stage);
      const rows: Cell[][] = names.map((name, i) => [
        name,
        ...cols.map(({ b, f }) => stageOf(b, f)?.stages[i]?.us),
      ]);
      rows.push(['sum of stages', ...cols.map(({ b, f }) => stageOf(b, f)?.totalUs)]);
      rows.push([
        'handler, measured (table above)',
        ...cols.map(({ b, f }) => find(r.handler, h.model, b, `handler-${f}`)?.mean),
      ]);
      out.push(
        table(
          [
            { title: `${label(h.model)}: stage` },
            ...cols.map(({ title }) => ({ title, decimals: 1, align: 'r' as const })),
          ],
          rows,
        ),
        '',
      );
    }
    out.push(
      '   Per-request telemetry alone, in a tight loop (us; the pipeline above pays more: caches are cold after a run):',
    );
    for (const h of r.handler) {
      out.push(`     ${label(h.model)}: ${h.telemetry.map((t) => `${t.option} ${fmt(t.us, 1)}`).join('; ')}`);
    }
    out.push('');
  } else {
    out.push('1. Lambda handler: skipped (BENCH_ONLY)', '');
  }

  if (r.server.length > 0) {
    out.push(
      `2. HTTP server (separate process) with autocannon (this process), loopback, JSON POST, ${CFG.server.durationS} s per point`,
      `   after a ${CFG.server.warmupS} s warm-up. Raw = sequential session.run in its own process, ${CFG.raw.measure.maxMs / 1000} s.`,
      `   "${SERVER}": the service as \`mdk serve\` builds it by default (dynamic batching, up to ${SERVE_BATCH_ROWS} rows per run);`,
      `   "${SERVER_OFF}": --batch-rows 0. No access log (as --quiet). req/run = requests per session run,`,
      '   from service.batchingStats() over the point. Client and server share the cores.',
      '   Mean latency = connections / req/s (autocannon keeps whole ms only).',
      '',
    );
    const sRows: Cell[][] = r.server.map((p) => {
      const rawPoint = r.raw.find((x) => x.model === p.model)?.points.find((x) => x.batch === p.batch);
      return [
        label(p.model),
        p.variant,
        p.batch,
        p.connections,
        p.perSec,
        p.latencyMeanMs,
        p.latencyP99Ms,
        p.non2xx + p.errors,
        p.requestsPerRun,
        rawPoint?.perSec,
        rawPoint ? p.perSec / rawPoint.perSec : undefined,
      ];
    });
    out.push(
      table(
        [
          { title: 'model' },
          { title: 'variant' },
          { title: 'batch' },
          { title: 'conns' },
          { title: 'req/s', decimals: 0 },
          { title: 'mean ms', decimals: 2 },
          { title: 'p99 ms' },
          { title: 'non-2xx+err' },
          { title: 'req/run', decimals: 1, align: 'r' },
          { title: 'raw runs/s', decimals: 0, align: 'r' },
          { title: 'server/raw', decimals: 2, align: 'r' },
        ],
        sRows,
      ),
      `   raw loop (sequential, batch 1 / 64), latency us mean/p50/p99 and cores kept busy (intra-op workers spin):`,
      ...r.raw.map(
        (x) =>
          `     ${label(x.model)}: ${x.points
            .map(
              (p) =>
                `b${p.batch} ${fmt(p.latency.mean)}/${fmt(p.latency.p50)}/${fmt(p.latency.p99)} us, ${fmt(p.coresBusy, 2)} cores`,
            )
            .join('; ')}`,
      ),
      '',
    );
  } else {
    out.push('2. HTTP server: skipped (BENCH_ONLY)', '');
  }

  if (r.cold.length > 0) {
    out.push(
      `3. Cold start: a fresh node process requires the handler module, awaits ready, sends one batch-1 request.`,
      `   Median of ${CFG.cold.runs} runs (after one unrecorded run). Child times are ms since its process started.`,
      '',
    );
    out.push(
      table(
        [
          { title: 'model' },
          { title: 'loader' },
          { title: 'spawn->ready (wall)', decimals: 0 },
          { title: 'start->ready', decimals: 0 },
          { title: 'start->script', decimals: 0 },
          { title: 'import', decimals: 0 },
          { title: 'model load', decimals: 0 },
          { title: '1st req', decimals: 1 },
          { title: 'S3 SDK loaded' },
        ],
        r.cold.map((c) => [
          label(c.model),
          c.loader,
          c.median.wallToReadyMs,
          c.median.readyMs,
          c.median.scriptStartMs,
          c.median.importMs,
          c.median.modelLoadMs,
          c.median.firstRequestMs,
          `${c.s3SdkLoadedRuns ? 'YES' : 'no'} (${c.s3SdkLoadedRuns}/${c.runs.length})`,
        ]),
      ),
      '   (ms. spawn->ready: parent wall clock from spawn() to the ready message. import: require() of the handler',
      "    module, which starts the model load. model load: the service's loadMs (read, sha256, session create),",
      '    which overlaps the import. S3 SDK loaded: @aws-sdk/client-s3 in the require cache at ready; it is',
      '    imported on first use, and a local model should never need it.)',
      `   require() of each dependency alone, in order, fresh plain-node process (ms): ${r.deps
        .map((d) => `${d.module} ${fmt(d.ms, 0)}`)
        .join(', ')}`,
      '',
    );
  } else {
    out.push('3. Cold start: skipped (BENCH_ONLY)', '');
  }

  out.push(`4. Goals (model: ${label(TARGET_MODEL)})`, '');
  out.push(
    table(
      [
        { title: 'goal' },
        { title: 'measured', decimals: 2 },
        { title: 'target' },
        { title: 'verdict' },
        { title: 'detail' },
      ],
      verdictList.map((v) => [
        v.goal,
        v.measured,
        v.target,
        v.pass === undefined ? 'n/a' : v.pass ? 'PASS' : 'FAIL',
        v.detail,
      ]),
    ),
  );
  return out.join('\n');
}

// ---- main ----

async function main(): Promise<void> {
  const startedAt = performance.now();
  const tmp = await fs.mkdtemp(path.join(os.tmpdir(), 'mdk-bench-'));
  // Inside bench/results (gitignored) so the bundle finds node_modules for its external packages.
  const bundleDir = path.join(RESULTS, '.cold-bundle');
  const cpu: Results['cpu'] = [];
  let mark: { name: string; at: CpuSnapshot | undefined } | undefined;
  // Closes the previous phase's CPU account and opens the next.
  const phase = (name: string | undefined) => {
    const now = cpuSnapshot();
    if (mark) {
      const share = cpuShare(mark.at, now);
      cpu.push({ phase: mark.name, others: share?.others, steal: share?.steal });
    }
    mark = name === undefined ? undefined : { name, at: now };
  };
  try {
    const models = await prepareModels(tmp);
    const machine = machineInfo();
    progress(`models: ${models.map((m) => `${m.label} at ${m.dir}`).join('; ')}`);

    const handler: HandlerChildResult[] = [];
    const raw: RawChildResult[] = [];
    const server: ServerPoint[] = [];
    let cold: ColdSummary[] = [];
    let deps: { module: string; ms: number }[] = [];
    if (ONLY.has('handler')) {
      phase('handler');
      for (const m of models) handler.push(await benchHandler(m));
    }
    if (ONLY.has('server')) {
      phase('raw');
      for (const m of models) raw.push(await benchRaw(m));
      phase('server');
      for (const m of models) {
        server.push(...(await benchServer(m, SERVE_BATCH_ROWS)));
        server.push(...(await benchServer(m, 0)));
      }
    }
    if (ONLY.has('cold')) {
      phase('cold');
      const bundled = await bundleForCold(bundleDir);
      const tsx: Loader = {
        label: 'tsx (node --import tsx)',
        nodeArgs: TSX_ARGS,
        script: child('cold-child.ts'),
        handlerModule: path.join(ROOT, 'lambda', 'handlers', 'api.ts'),
      };
      cold = await benchCold(models, [tsx, bundled]);
      deps = await benchDeps(bundled);
    }
    phase(undefined);

    const results: Results = { machine, models, handler, raw, server, cold, deps, cpu };
    const verdictList = verdicts(results);
    process.stdout.write(`${report(results, verdictList)}\n`);
    const elapsedS = (performance.now() - startedAt) / 1000;
    process.stdout.write(`\nbench took ${elapsedS.toFixed(0)} s; JSON in bench/results/latest.json\n`);

    await fs.mkdir(RESULTS, { recursive: true });
    const json = { generatedAt: new Date().toISOString(), quick: QUICK, elapsedS, config: CFG, ...results };
    await fs.writeFile(
      path.join(RESULTS, 'latest.json'),
      `${JSON.stringify({ ...json, verdicts: verdictList }, null, 2)}\n`,
    );
  } finally {
    await fs.rm(tmp, { recursive: true, force: true });
    await fs.rm(bundleDir, { recursive: true, force: true });
  }
}

const watchdog = setTimeout(() => {
  process.stderr.write(`[bench] gave up after ${CFG.overallMs / 60_000} minutes\n`);
  killChildren();
  process.exit(1);
}, CFG.overallMs);
watchdog.unref();

main().then(
  () => process.exit(0),
  (err: unknown) => {
    // A broken bench (not a slow one) is an error.
    process.stderr.write(
      `[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    killChildren();
    process.exit(1);
  },
);
