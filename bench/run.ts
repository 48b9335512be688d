/**
 * `npm run bench`: how much the serving runtime adds to a bare onnxruntime
 * session, in the Lambda handler, in the HTTP server, and at cold start.
 *
 * Every measurement runs in a child process of its own (the handler's logs go
 * to /dev/null there; the server does not share autocannon's event loop), and
 * every loop is bounded by both a count and a time. The server phase compares
 * dynamic batching off and on (batch-1 requests on the mlp model) in a closed
 * loop (autocannon, 32 and 128 connections) and an open loop (fixed Poisson
 * arrival rates, open-loop-child.ts), with sub-millisecond client-side latency
 * percentiles, and checks the issue's p99 bound against the raw session.run
 * at the batch size the server formed. Prints tables to stdout,
 * progress to stderr, and writes bench/results/latest.json. Always exits 0 when
 * it ran: timings never fail the bench, they are reported as PASS/FAIL.
 *
 * BENCH_QUICK=1 shortens every bound, for checking the bench itself.
 * The predict phase measures `mdk predict` rows/s on a CSV and a JSONL file against raw session.run at the same
 * batch size and against reading and parsing alone (predict-child.ts).
 *
 * BENCH_ONLY=handler,server,cold,predict,capture picks phases (all by default); ORT_INTRA_OP_THREADS is honoured as in Lambda.
 * BENCH_OPEN_LOOP_BASIS=N sets the req/s the open-loop rates are shares of, instead of the closed-loop point's,
 * to compare settings (threads, say) at the same arrival rates.
 */
import autocannon from 'autocannon';
import { execFileSync } from 'node:child_process';
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { BatchingStats } from '../lambda/core/batcher';
import { defaultThreads } from '../lambda/core/model';
import { buildMlp, seededRandom } from '../models/onnx-builder';
import { Child, killChildren, ROOT, runChild, TSX_ARGS } from './children';
import { cpuShare, cpuSnapshot, type CpuSnapshot } from './cpu';
import {
  buildWorkload,
  inferPath,
  lambdaLikeEnv,
  median,
  percentile,
  type Bound,
  type ChildMessage,
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
import type { OpenLoopChildArgs } from './open-loop-child';
import type { PredictChildArgs, PredictChildResult } from './predict-child';
import type { ServerChildArgs } from './server-child';
import { fmt, table, type Cell } from './table';

const QUICK = process.env.BENCH_QUICK === '1';
/** Phases to run: handler, server (with the raw baseline), cold. */
const ONLY = new Set(
  (process.env.BENCH_ONLY ?? 'handler,server,cold,predict,capture').split(',').map((x) => x.trim()),
);
const MLP_LAYERS = [256, 1024, 1024, 10];
const BATCHES = [1, 64];
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
  /**
   * Per point: `rounds` windows of `durationS`, each opened once every connection has had an answer and at
   * least `warmupS` (at most `maxWarmupS`) has passed; variants take turns between rounds.
   */
  server: {
    rounds: QUICK ? 1 : 3,
    warmupS: QUICK ? 0.3 : 0.5,
    maxWarmupS: QUICK ? 5 : 15,
    durationS: QUICK ? 1 : 3,
  },
  /**
   * Per point: a fixed Poisson rate, `shares` of a closed-loop point's req/s measured before, `rounds`
   * windows with the variants taking turns (one stall of tens of ms in a window sets its p99); first
   * `referenceShare`, near idle, for the latency floor without queueing (also against a no-model echo
   * server), one window. Each window: a fresh generator primes `primeConnections`, warms up `warmupS`,
   * measures `durationS`, then waits up to `drainS` for the window's late answers; `settleS` between windows.
   */
  openLoop: {
    referenceShare: 0.02,
    shares: [0.5, 0.8],
    rounds: QUICK ? 1 : 2,
    warmupS: QUICK ? 0.3 : 1,
    durationS: QUICK ? 1 : 3,
    drainS: QUICK ? 0.5 : 1.5,
    settleS: QUICK ? 0.2 : 0.5,
    maxSockets: 256,
    primeConnections: 32,
  },
  /** The raw session.run at the batch sizes the batching server formed, for the p99 bound: median run time. */
  rawAtBatch: {
    warmup: { maxIters: 500, maxMs: QUICK ? 100 : 300 },
    measure: { maxIters: QUICK ? 500 : 3000, maxMs: QUICK ? 150 : 600 },
  },
  cold: { runs: QUICK ? 2 : 5, depsRuns: QUICK ? 1 : 3 },
  /** mdk predict on the mlp model: rows per file (full float32 precision, as numpy writes them), rounds. */
  predict: { rows: QUICK ? 4000 : 20_000, rounds: QUICK ? 1 : 3, batchSize: 256 },
  /** Nothing may make the whole bench run longer than this. */
  overallMs: 12 * 60_000,
} as const satisfies {
  handler: { warmup: Bound; block: Bound; stageBlock: Bound; rounds: number; stageRounds: number };
  raw: { warmup: Bound; measure: Bound };
  rawAtBatch: { warmup: Bound; measure: Bound };
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

// ---- 5. data capture ----

interface CaptureBench {
  readonly model: string;
  /** The same handler child, data capture off and at 100 %, stdout piped to this process as Lambda pipes it. */
  readonly off: HandlerChildResult;
  readonly on: HandlerChildResult;
}

async function benchCapture(model: ModelCase): Promise<CaptureBench> {
  const run = (capture: boolean) => {
    progress(
      `capture: ${model.label}, handler with data capture ${capture ? 'at 100 %' : 'off'} (stdout piped)`,
    );
    const args: HandlerChildArgs = { model, batches: BATCHES, ...CFG.handler };
    return runChild(child('handler-child.ts'), args, 'handler', {
      env: lambdaLikeEnv({ MODEL_URI: model.dir, ...(capture ? { CAPTURE_PERCENT: '100' } : {}) }),
      stdout: 'pipe',
      timeoutMs: 240_000,
    });
  };
  const off = await run(false);
  const on = await run(true);
  return { model: model.key, off, on };
}

// ---- 2. server throughput, dynamic batching on and off ----

/** Requests in flight the server accepts (`mdk serve --max-queue`): well above the most connections, so none is refused. */
const MAX_IN_FLIGHT = 1024;
const SERVER_CONNECTIONS = [32, 128];
const SERVER_BATCH = 1;

interface ServerVariant {
  readonly key: string;
  readonly label: string;
  /** As `mdk serve --batch-max-size N --batch-max-latency-ms MS`; undefined is off, the default. */
  readonly batching: { readonly maxBatchSize: number; readonly maxLatencyMs: number } | undefined;
}

const OFF = 'off';
/** `--batch-max-size 64`: joins only what is already waiting, adds no wait. */
const ON_0 = 'on-64-0ms';
const ON_2 = 'on-64-2ms';
const SERVER_VARIANTS: readonly ServerVariant[] = [
  { key: OFF, label: 'batching off', batching: undefined },
  { key: ON_0, label: 'batching 64, 0 ms', batching: { maxBatchSize: 64, maxLatencyMs: 0 } },
  { key: ON_2, label: 'batching 64, 2 ms', batching: { maxBatchSize: 64, maxLatencyMs: 2 } },
];
/** At the open loop's near-idle reference rate only: Node's HTTP on loopback without a model. */
const ECHO: ServerVariant = { key: 'echo', label: 'echo server, no model', batching: undefined };
/** The closed-loop point whose req/s the open-loop rates are shares of (unless BENCH_OPEN_LOOP_BASIS is set). */
const OPEN_LOOP_BASIS = { variant: ON_2, connections: 32 } as const;
const OPEN_LOOP_BASIS_SET = Number(process.env.BENCH_OPEN_LOOP_BASIS) || undefined;

/**
 * The issue's p99 bound for a batching-on point: maxLatencyMs + 2 x one batched run. One batched run is the
 * raw session.run's median time (raw child: alone, same thread settings) at the batch size the server
 * formed, its requests per run rounded. (The batcher's own joined-run time is not used: onnxruntime-node
 * 1.30 runs the session from a setImmediate, so that timer also covers an event-loop turn of HTTP work.)
 */
interface P99Bound {
  rows: number;
  rawRunMs: number;
  boundMs: number;
}

/** Client-side latency of the 2xx responses of one point, ms. */
interface LatencyMs {
  n: number;
  mean: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/** What the server side of a closed- or open-loop point measured. */
interface ServerFigures {
  /** From service.batchingStats() over this point (batching on only). */
  sessionRuns?: number;
  requestsPerRun?: number;
  /**
   * Mean ms of the session runs that joined two or more requests (batchingStats' joinedRunMs / joinedRuns).
   * Timed from before onnxruntime-node's setImmediate, so it includes one event-loop turn.
   */
  meanJoinedRunMs?: number;
  /** Filled in once the raw runs at the formed batch size are measured (batching on only). */
  bound?: P99Bound;
  /** CPU time over wall time: the server process (main thread and onnxruntime's threads), and the load generator. */
  serverCores: number;
  clientCores: number;
  /** Cores busy with anything else on the machine (Linux /proc/stat), during this point: noise. */
  otherCores: number | undefined;
  /** Share of the server's main thread spent running (JSON, HTTP, session.run), not waiting for I/O. */
  serverEventLoopUtilization: number;
}

interface ServerPoint extends ServerFigures {
  model: string;
  variant: string;
  label: string;
  batching: ServerVariant['batching'];
  batch: number;
  connections: number;
  /** Measured runs summed into this point. */
  rounds: number;
  /** Seconds measured, and spent warming up first (until every connection had an answer), over all rounds. */
  seconds: number;
  warmupS: number;
  /** Connections live in the measurement (fewest over rounds); below `connections` only if warm-up ran out. */
  liveConnections: number;
  /** 2xx responses per second. */
  perSec: number;
  latencyMs: LatencyMs;
  non2xx: number;
  errors: number;
  timeouts: number;
  batchedRequests?: number;
  joinedRuns?: number;
}

/**
 * Load from autocannon, in this process, over `connections` keep-alive connections each sending its next
 * request as soon as the last is answered (a closed loop). Its latency histogram keeps whole milliseconds
 * (hdr-histogram with lowestDiscernibleValue 1; recordValue truncates: 0.3, 0.7, 1.4, 1.9 and 2.6 ms give
 * p50 1, p99 2), too coarse for a ~0.2 ms run, so its 'response' event is used instead: it carries each
 * response's time in fractional ms (process.hrtime from the write of the request to the end of the
 * response). Autocannon stays the client rather than a hand-written one because it is cheap per request
 * (pre-built request bytes on a raw socket), which matters when client and server share two cores.
 *
 * One autocannon run per measurement, with the window cut out of it here: a busy Node server accepts about
 * one new connection per event-loop iteration (libuv; checked with a plain net server blocking 20 ms per
 * iteration: 128 connections took 2.6 s to be accepted), so with batching off at 128 connections the last
 * ones wait seconds for their first answer. That is connection setup, not the steady state asked about: the
 * window opens only once every connection has had an answer (and `warmupS` has passed), and only requests
 * sent inside the window count towards the latency percentiles.
 */
interface Window {
  /** Seconds from the run's start until the window opened. */
  warmupS: number;
  /** Connections that had had an answer when the window opened: all of them unless `maxWarmupS` ran out. */
  live: number;
  seconds: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  before: ServerStats;
  after: ServerStats;
  clientCpuUs: number;
  machine0: CpuSnapshot | undefined;
  machine1: CpuSnapshot | undefined;
}

type ServerStats = Extract<ChildMessage, { kind: 'serverStats' }>;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, Math.max(0, ms)));

async function cannonWindow(
  server: Child,
  url: string,
  body: string,
  connections: number,
  samples: number[],
): Promise<Window> {
  const { warmupS, maxWarmupS, durationS } = CFG.server;
  const started = performance.now();
  const run = autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections,
    // Stopped here once the window closes; this is only the outer bound.
    duration: maxWarmupS + durationS + 5,
    timeout: 10,
  });
  const live = new Set<unknown>();
  let windowStart: number | undefined;
  let windowEnd: number | undefined;
  let ok = 0;
  let non2xx = 0;
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  const begin = () => {
    windowStart ??= performance.now();
    open();
  };
  run.on('response', (client, status, _bytes, ms) => {
    const now = performance.now();
    if (windowStart === undefined) {
      live.add(client);
      if (live.size >= connections && now - started >= warmupS * 1000) begin();
      return;
    }
    if (windowEnd !== undefined) return;
    if (status < 200 || status >= 300) non2xx++;
    else {
      ok++;
      if (now - ms >= windowStart) samples.push(ms);
    }
  });
  const cap = setTimeout(begin, maxWarmupS * 1000);
  try {
    // Rejects only if the run ends (its outer bound) before the window opened.
    const ended = Promise.resolve(run).then(() => {
      if (windowStart === undefined) {
        throw new Error(
          `autocannon ended before the measurement window opened (${live.size}/${connections} live)`,
        );
      }
    });
    await Promise.race([opened, ended]);
    const start = windowStart as number;
    const client0 = process.cpuUsage();
    const machine0 = cpuSnapshot();
    const before = await server.ask('stats', 'serverStats');
    await sleep(start + durationS * 1000 - performance.now());
    windowEnd = performance.now();
    const client = process.cpuUsage(client0);
    const machine1 = cpuSnapshot();
    const after = await server.ask('stats', 'serverStats');
    run.stop();
    const r = await run;
    return {
      warmupS: (start - started) / 1000,
      live: live.size,
      seconds: (windowEnd - start) / 1000,
      ok,
      // Over the whole run, warm-up included: nothing may be refused at any point.
      non2xx: Math.max(non2xx, r.non2xx),
      errors: r.errors,
      timeouts: r.timeouts,
      before,
      after,
      clientCpuUs: client.user + client.system,
      machine0,
      machine1,
    };
  } finally {
    clearTimeout(cap);
    run.stop();
  }
}

function latencyOf(samples: readonly number[]): LatencyMs {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (p: number) => percentile(sorted, p);
  return {
    n: sorted.length,
    mean: sorted.reduce((a, b) => a + b, 0) / sorted.length,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: sorted[sorted.length - 1] ?? NaN,
  };
}

/** What one measured run of a point adds up: counters to be summed over rounds. */
interface Tally {
  seconds: number;
  warmupS: number;
  /** The fewest connections live when a window opened. */
  live: number;
  ok: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  samples: number[];
  runs: number;
  requests: number;
  joinedRuns: number;
  joinedRunMs: number;
  serverCpuUs: number;
  clientCpuUs: number;
  eventLoopActiveMs: number;
  eventLoopIdleMs: number;
  /** Busy cores of the whole machine, times seconds (Linux); NaN when unknown. */
  machineBusyCoreSeconds: number;
}

function emptyTally(): Tally {
  return {
    seconds: 0,
    warmupS: 0,
    live: Infinity,
    ok: 0,
    non2xx: 0,
    errors: 0,
    timeouts: 0,
    samples: [],
    runs: 0,
    requests: 0,
    joinedRuns: 0,
    joinedRunMs: 0,
    serverCpuUs: 0,
    clientCpuUs: 0,
    eventLoopActiveMs: 0,
    eventLoopIdleMs: 0,
    machineBusyCoreSeconds: 0,
  };
}

/** One measured run of `connections` against one server, added to `t`. */
async function measure(server: Child, target: string, model: ModelCase, connections: number, t: Tally) {
  const body = buildWorkload(model, SERVER_BATCH).jsonBody;
  const w = await cannonWindow(server, target, body, connections, t.samples);
  const b0 = w.before.batching[model.name];
  const b1 = w.after.batching[model.name];
  t.seconds += w.seconds;
  t.warmupS += w.warmupS;
  t.live = Math.min(t.live, w.live);
  t.ok += w.ok;
  t.non2xx += w.non2xx;
  t.errors += w.errors;
  t.timeouts += w.timeouts;
  if (b0 && b1) {
    t.runs += b1.runs - b0.runs;
    t.requests += b1.requests - b0.requests;
    t.joinedRuns += b1.joinedRuns - b0.joinedRuns;
    t.joinedRunMs += b1.joinedRunMs - b0.joinedRunMs;
  }
  t.serverCpuUs += w.after.cpuUs - w.before.cpuUs;
  t.clientCpuUs += w.clientCpuUs;
  t.eventLoopActiveMs += w.after.eventLoop.activeMs - w.before.eventLoop.activeMs;
  t.eventLoopIdleMs += w.after.eventLoop.idleMs - w.before.eventLoop.idleMs;
  t.machineBusyCoreSeconds += machineBusyCores(w.machine0, w.machine1) * w.seconds;
}

/** Cores the whole machine kept busy between two snapshots (Linux); NaN when unknown. */
function machineBusyCores(m0: CpuSnapshot | undefined, m1: CpuSnapshot | undefined): number {
  return m0 && m1 && m1.total > m0.total
    ? ((m1.busy - m0.busy) / (m1.total - m0.total)) * os.cpus().length
    : NaN;
}

function toPoint(model: ModelCase, variant: ServerVariant, connections: number, t: Tally): ServerPoint {
  const batched = variant.batching !== undefined && t.runs > 0;
  const meanJoinedRunMs = batched && t.joinedRuns > 0 ? t.joinedRunMs / t.joinedRuns : undefined;
  const serverCores = t.serverCpuUs / 1e6 / t.seconds;
  const clientCores = t.clientCpuUs / 1e6 / t.seconds;
  const others = t.machineBusyCoreSeconds / t.seconds - serverCores - clientCores;
  return {
    model: model.key,
    variant: variant.key,
    label: variant.label,
    batching: variant.batching,
    batch: SERVER_BATCH,
    connections,
    rounds: CFG.server.rounds,
    seconds: t.seconds,
    warmupS: t.warmupS,
    liveConnections: t.live,
    perSec: t.ok / t.seconds,
    latencyMs: latencyOf(t.samples),
    non2xx: t.non2xx,
    errors: t.errors,
    timeouts: t.timeouts,
    sessionRuns: batched ? t.runs : undefined,
    batchedRequests: batched ? t.requests : undefined,
    requestsPerRun: batched ? t.requests / t.runs : undefined,
    joinedRuns: batched ? t.joinedRuns : undefined,
    meanJoinedRunMs,
    serverCores,
    clientCores,
    otherCores: Number.isFinite(others) ? Math.max(0, others) : undefined,
    serverEventLoopUtilization: t.eventLoopActiveMs / (t.eventLoopActiveMs + t.eventLoopIdleMs),
  };
}

/**
 * One server process per variant, all started first (an idle one takes no CPU). Per connection count, the
 * variants take turns, one measured run each per round, and each point sums its rounds: the variants
 * compared at one connection count share the same stretch of time, and a burst of other work on the
 * machine is spread over them rather than landing on one.
 */
async function benchServer(model: ModelCase): Promise<{ closed: ServerPoint[]; open: OpenLoopPoint[] }> {
  progress(
    `server: ${model.label}, ${SERVER_VARIANTS.map((v) => v.label).join(' / ')} (each server in a child process, autocannon here)`,
  );
  const servers = SERVER_VARIANTS.map((variant) => {
    const arg: ServerChildArgs = { model, batching: variant.batching, maxInFlight: MAX_IN_FLIGHT };
    return {
      variant,
      child: new Child(child('server-child.ts'), arg, { stdout: 'ignore', timeoutMs: 300_000 }),
    };
  });
  const echoArg: ServerChildArgs = { model, batching: undefined, maxInFlight: MAX_IN_FLIGHT, echo: true };
  const echo = new Child(child('server-child.ts'), echoArg, { stdout: 'ignore', timeoutMs: 300_000 });
  const points: ServerPoint[] = [];
  const open: OpenLoopPoint[] = [];
  try {
    const urls = await Promise.all(servers.map(async (s) => (await s.child.waitFor('listening')).url));
    const targets = servers.map(({ variant, child: server }, i) => ({
      variant,
      server,
      url: `${urls[i] as string}${inferPath(model)}`,
    }));
    for (const connections of SERVER_CONNECTIONS) {
      const tallies = servers.map(() => emptyTally());
      for (let round = 0; round < CFG.server.rounds; round++) {
        progress(`  ${connections} connections, round ${round + 1} of ${CFG.server.rounds}`);
        for (const [i, { server, url }] of targets.entries()) {
          await measure(server, url, model, connections, tallies[i] as Tally);
        }
      }
      servers.forEach(({ variant }, i) =>
        points.push(toPoint(model, variant, connections, tallies[i] as Tally)),
      );
    }
    const basis = points.find(
      (p) => p.variant === OPEN_LOOP_BASIS.variant && p.connections === OPEN_LOOP_BASIS.connections,
    );
    if (!basis) throw new Error('the open-loop basis point was not measured');
    const basisPerSec = OPEN_LOOP_BASIS_SET ?? basis.perSec;
    // Batching on first at each rate, off (overloaded at the higher rates) last; the echo server at the
    // reference rate only.
    const order = [
      ...targets.filter((t) => t.variant.batching),
      ...targets.filter((t) => !t.variant.batching),
    ];
    const echoUrl = `${(await echo.waitFor('listening')).url}${inferPath(model)}`;
    const { referenceShare, shares } = CFG.openLoop;
    for (const share of [referenceShare, ...shares]) {
      const reference = share === referenceShare;
      const list = reference ? [...order, { variant: ECHO, server: echo, url: echoUrl }] : order;
      const rounds = reference ? 1 : CFG.openLoop.rounds;
      const windows = list.map((): OpenWindow[] => []);
      const rate = share * basisPerSec;
      for (let round = 0; round < rounds; round++) {
        progress(
          `  open loop, ${(share * 100).toFixed(0)}% of ${fmt(basisPerSec)}/s, round ${round + 1} of ${rounds}`,
        );
        for (const [i, t] of list.entries()) {
          // The same schedule for every variant in a round; another one each round.
          const seed = 4242 + Math.round(share * 100) * 10 + round;
          windows[i]?.push(await openLoopWindow(model, t.server, t.url, rate, seed));
          await sleep(CFG.openLoop.settleS * 1000);
        }
      }
      list.forEach((t, i) => open.push(toOpenPoint(model, t.variant, share, rate, windows[i] ?? [])));
    }
  } finally {
    const all = [...servers.map((s) => s.child), echo];
    for (const server of all) if (server.process.connected) server.send('stop');
    await Promise.all(all.map((c) => c.done));
  }
  return { closed: points, open };
}

// ---- 2b. open loop: a fixed arrival rate ----

interface OpenLoopPoint extends ServerFigures {
  model: string;
  variant: string;
  label: string;
  batching: ServerVariant['batching'];
  batch: number;
  /** The rate asked for: `share` of the basis point's closed-loop req/s. */
  share: number;
  targetPerSec: number;
  /** Windows summed into this point, and their seconds. */
  rounds: number;
  seconds: number;
  /** Requests scheduled in the windows; sent in them, per second; 2xx answers that ended in them, per second. */
  scheduled: number;
  sentPerSec: number;
  okPerSec: number;
  /** Schedule-based, ms, over every window's requests; null: that share had no 2xx answer by the end of the drain. */
  latencyMs: OpenLoopLatency;
  /** Each window's own p99, ms (null as above). */
  p99PerWindowMs: (number | null)[];
  non2xx: number;
  errors: number;
  unanswered: number;
  /** The load generator's lag behind its schedule, ms (part of the latency). */
  sendLagMs: { p50: number; p99: number };
}

/** Latency percentiles where null (no 2xx answer) counts as infinitely late. */
interface OpenLoopLatency {
  p50: number | null;
  p90: number | null;
  p99: number | null;
  max: number | null;
}

function openLatencyOf(samples: readonly (number | null)[]): OpenLoopLatency {
  const sorted = samples.map((x) => x ?? Infinity).sort((a, b) => (a === b ? 0 : a < b ? -1 : 1));
  const finite = (x: number) => (Number.isFinite(x) ? x : null);
  return {
    p50: finite(percentile(sorted, 50)),
    p90: finite(percentile(sorted, 90)),
    p99: finite(percentile(sorted, 99)),
    max: finite(sorted[sorted.length - 1] ?? NaN),
  };
}

interface OpenWindow {
  result: Extract<ChildMessage, { kind: 'openLoop' }>;
  before: ServerStats;
  after: ServerStats;
  machineBusyCores: number;
}

/** One open-loop window against one server: the generator in a child process, server counters around the window. */
async function openLoopWindow(
  model: ModelCase,
  server: Child,
  url: string,
  ratePerSec: number,
  seed: number,
): Promise<OpenWindow> {
  const { warmupS, durationS, drainS, maxSockets, primeConnections } = CFG.openLoop;
  const arg: OpenLoopChildArgs = {
    url,
    body: buildWorkload(model, SERVER_BATCH).jsonBody,
    ratePerSec,
    warmupS,
    durationS,
    drainS,
    maxSockets,
    primeConnections,
    seed,
  };
  const gen = new Child(child('open-loop-child.ts'), arg, {
    stdout: 'ignore',
    timeoutMs: (warmupS + durationS + drainS) * 1000 + 30_000,
  });
  await gen.waitFor('windowOpen');
  const machine0 = cpuSnapshot();
  const before = await server.ask('stats', 'serverStats');
  await gen.waitFor('windowClose');
  const machine1 = cpuSnapshot();
  const after = await server.ask('stats', 'serverStats');
  const result = await gen.waitFor('openLoop');
  await gen.done;
  return { result, before, after, machineBusyCores: machineBusyCores(machine0, machine1) };
}

function toOpenPoint(
  model: ModelCase,
  variant: ServerVariant,
  share: number,
  targetPerSec: number,
  windows: readonly OpenWindow[],
): OpenLoopPoint {
  const sum = (f: (w: OpenWindow) => number) => windows.reduce((a, w) => a + f(w), 0);
  const delta = (f: (b: BatchingStats) => number) =>
    sum((w) => {
      const b0 = w.before.batching[model.name];
      const b1 = w.after.batching[model.name];
      return b0 && b1 ? f(b1) - f(b0) : 0;
    });
  const seconds = sum((w) => w.result.seconds);
  const runs = delta((b) => b.runs);
  const joinedRuns = delta((b) => b.joinedRuns);
  const batched = variant.batching !== undefined && runs > 0;
  const serverCores = sum((w) => w.after.cpuUs - w.before.cpuUs) / 1e6 / seconds;
  const clientCores = sum((w) => w.result.cpuUs) / 1e6 / seconds;
  const others = sum((w) => w.machineBusyCores * w.result.seconds) / seconds - serverCores - clientCores;
  const active = sum((w) => w.after.eventLoop.activeMs - w.before.eventLoop.activeMs);
  const idle = sum((w) => w.after.eventLoop.idleMs - w.before.eventLoop.idleMs);
  const lags = windows.flatMap((w) => w.result.sendLagMs).sort((a, b) => a - b);
  return {
    model: model.key,
    variant: variant.key,
    label: variant.label,
    batching: variant.batching,
    batch: SERVER_BATCH,
    share,
    targetPerSec,
    rounds: windows.length,
    seconds,
    scheduled: sum((w) => w.result.scheduled),
    sentPerSec: sum((w) => w.result.sentInWindow) / seconds,
    okPerSec: sum((w) => w.result.okPerSec * w.result.seconds) / seconds,
    latencyMs: openLatencyOf(windows.flatMap((w) => w.result.latencyMs)),
    p99PerWindowMs: windows.map((w) => openLatencyOf(w.result.latencyMs).p99),
    non2xx: sum((w) => w.result.non2xx),
    errors: sum((w) => w.result.errors),
    unanswered: sum((w) => w.result.unanswered),
    sendLagMs: { p50: percentile(lags, 50), p99: percentile(lags, 99) },
    sessionRuns: batched ? runs : undefined,
    requestsPerRun: batched ? delta((b) => b.requests) / runs : undefined,
    meanJoinedRunMs: batched && joinedRuns > 0 ? delta((b) => b.joinedRunMs) / joinedRuns : undefined,
    serverCores,
    clientCores,
    otherCores: Number.isFinite(others) ? Math.max(0, others) : undefined,
    serverEventLoopUtilization: active / (active + idle),
  };
}

/** Batch sizes the batching server formed, over all batching-on points: their requests per run, rounded. */
function formedRows(points: readonly { batching: ServerVariant['batching']; requestsPerRun?: number }[]) {
  return points
    .filter((p) => p.batching && p.requestsPerRun !== undefined)
    .map((p) => Math.max(1, Math.round(p.requestsPerRun as number)));
}

/** The raw runs at the batch sizes the batching server formed (servers stopped, nothing else running). */
async function benchRawAtBatch(model: ModelCase, batches: readonly number[]): Promise<RawChildResult> {
  progress(`raw session.run at the batch sizes formed: ${batches.join(', ')} rows (own child process)`);
  return runChild(child('raw-child.ts'), { model, batches, ...CFG.rawAtBatch }, 'raw', {
    stdout: 'ignore',
    timeoutMs: 120_000,
  });
}

function withBound<
  P extends { batching: ServerVariant['batching']; requestsPerRun?: number; bound?: P99Bound },
>(p: P, raw: RawChildResult | undefined): P {
  if (!p.batching || p.requestsPerRun === undefined) return p;
  const rows = Math.max(1, Math.round(p.requestsPerRun));
  const run = raw?.points.find((x) => x.batch === rows);
  if (!run) return p;
  const rawRunMs = run.latency.p50 / 1000;
  return { ...p, bound: { rows, rawRunMs, boundMs: p.batching.maxLatencyMs + 2 * rawRunMs } };
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
  /** Closed loop (autocannon), each batching-on point with its p99 bound. */
  server: ServerPoint[];
  /** Open loop (fixed arrival rates), likewise. */
  openLoop: OpenLoopPoint[];
  /** The raw session.run at the batch sizes the batching server formed: the bounds' "one batched run". */
  rawAtBatch: RawChildResult[];
  cold: ColdSummary[];
  deps: { module: string; ms: number }[];
  /** mdk predict vs its parts, when measured. */
  predict: PredictChildResult | undefined;
  /** The handler with data capture off and on, when measured. */
  capture: CaptureBench | undefined;
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
  const rawB1 = rawPoint(r, m, 1);
  const off32 = serverPoint(r, OFF, 32);
  const on32 = serverPoint(r, ON_0, 32);
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
    pass:
      Number.isNaN(measured) || Number.isNaN(limit)
        ? undefined
        : higherIsBetter
          ? measured >= limit
          : measured <= limit,
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
    ...SERVER_VARIANTS.filter((x) => x.batching).map((x) => {
      const on = serverPoint(r, x.key, 32);
      return v(
        `server req/s, ${x.label} / batching off, 32 connections, batch 1`,
        (on?.perSec ?? NaN) / (off32?.perSec ?? NaN),
        2,
        true,
        `${fmt(on?.perSec)} / ${fmt(off32?.perSec)} per s; ${fmt(on?.requestsPerRun, 1)} requests per run`,
      );
    }),
    v(
      `server req/s, ${SERVER_VARIANTS.find((x) => x.key === ON_0)?.label ?? ON_0}, 32 connections, batch 1 / raw session runs/s, batch 1`,
      (on32?.perSec ?? NaN) / (rawB1?.perSec ?? NaN),
      0.5,
      true,
      `${fmt(on32?.perSec)} / ${fmt(rawB1?.perSec)} per s`,
    ),
    ...r.openLoop
      .filter((p) => p.model === m && p.batching && p.share !== CFG.openLoop.referenceShare)
      .map((p) =>
        v(
          `server p99 ms, open loop at ${openRateText(p)}, ${p.label}: <= maxLatencyMs + 2 x raw run at the batch formed`,
          p.latencyMs.p99 ?? Infinity,
          p.bound?.boundMs ?? NaN,
          false,
          boundText(p.latencyMs.p99, p),
        ),
      ),
    ...r.server
      .filter((p) => p.model === m && p.batching)
      .map((p) =>
        v(
          `server p99 ms, closed loop (saturated), ${p.label}, ${p.connections} connections: same bound`,
          p.latencyMs.p99,
          p.bound?.boundMs ?? NaN,
          false,
          `${boundText(p.latencyMs.p99, p)}; Little's law: mean = ${p.connections} / req/s = ${fmt((p.connections / p.perSec) * 1000, 2)} ms`,
        ),
      ),
    ...(r.predict?.points ?? []).map((p) =>
      v(
        `mdk predict rows/s, ${p.format.toUpperCase()} / the slower of (a) raw session.run at batch ${r.predict?.batchSize ?? '?'} and (b) read + parse alone`,
        p.predict / Math.min(p.raw, p.parse),
        0.7,
        true,
        `${fmt(p.predict)} / min(${fmt(p.raw)}, ${fmt(p.parse)}) rows/s`,
      ),
    ),
  ];
}

function openRateText(p: OpenLoopPoint): string {
  return `${(p.share * 100).toFixed(0)}% (${fmt(p.targetPerSec)}/s)`;
}

/** A latency shown as "> cap" when that share of requests had no 2xx answer by the end of the drain. */
function lateMs(x: number | null, decimals = 2): string {
  return x === null ? `>${fmt(CFG.openLoop.drainS * 1000)}` : fmt(x, decimals);
}

function serverPoint(r: Results, variant: string, connections: number): ServerPoint | undefined {
  return r.server.find(
    (p) => p.model === TARGET_MODEL && p.variant === variant && p.connections === connections,
  );
}

function rawPoint(r: Results, model: string, batch: number): RawChildResult['points'][number] | undefined {
  return r.raw.find((x) => x.model === model)?.points.find((p) => p.batch === batch);
}

function boundText(p99: number | null, p: { batching: ServerVariant['batching']; bound?: P99Bound }): string {
  const b = p.bound;
  const verdict = b === undefined ? 'n/a' : p99 !== null && p99 <= b.boundMs ? 'within' : 'over';
  return `p99 ${lateMs(p99)} ms vs ${p.batching?.maxLatencyMs ?? '?'} + 2 x ${fmt(b?.rawRunMs, 3)} (raw run, ${b?.rows ?? '?'} row${b?.rows === 1 ? '' : 's'}) = ${fmt(b?.boundMs, 2)} ms: ${verdict}`;
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
    const rawB1 = rawPoint(r, TARGET_MODEL, 1);
    const basis = serverPoint(r, OPEN_LOOP_BASIS.variant, OPEN_LOOP_BASIS.connections);
    const rowsText = (b: P99Bound | undefined) => (b ? `${fmt(b.rawRunMs, 3)} (${b.rows})` : undefined);
    out.push(
      `2. HTTP server (its own process): ${label(TARGET_MODEL)}, batch-${SERVER_BATCH} JSON POSTs on loopback. Variants as`,
      `   \`mdk serve --batch-max-size N --batch-max-latency-ms MS\`; off is the default. Max in flight ${MAX_IN_FLIGHT}, no access log`,
      `   (as --quiet). Client and server share the ${r.machine.cores} cores. req/run = requests per session run (service.batchingStats()).`,
      '   raw run = median raw session.run (own process, alone, same threads) at the batch size formed, req/run rounded,',
      '   shown as "ms (rows)": the "one batched run" of the p99 bound, maxLatencyMs + 2 x raw run. joined run = the',
      "   batcher's own mean time of runs that joined >= 2 requests; it also covers the event-loop turn onnxruntime-node",
      '   waits for before running (setImmediate), HTTP parsing included. CPU: cores kept busy by the server (main thread',
      "   + onnxruntime's threads), the client, and other processes (noise); loop = the server main thread's event-loop",
      '   utilization.',
      '',
      '2a. Closed loop (saturated): autocannon in this process, each connection sending its next request when the last',
      `   is answered. Each point is ${CFG.server.rounds} window(s) of ${CFG.server.durationS} s, variants taking turns; a window opens once every`,
      `   connection has had an answer (warm-up: >= ${CFG.server.warmupS} s, mean per window shown; a busy server accepts ~1 connection`,
      '   per event-loop turn). Latency: client-side, requests sent in the window, sub-ms. non-2xx and errors: whole',
      `   runs, warm-up included. vs raw: req/s over raw session runs/s at batch 1 (${CFG.raw.measure.maxMs / 1000} s loop).`,
      '',
    );
    const sRows: Cell[][] = r.server.map((p) => [
      p.label,
      p.liveConnections < p.connections ? `${p.connections} (${p.liveConnections} live)` : p.connections,
      p.perSec,
      p.latencyMs.p50,
      p.latencyMs.p99,
      p.latencyMs.mean,
      p.requestsPerRun,
      rowsText(p.bound),
      p.meanJoinedRunMs,
      p.non2xx,
      p.errors + p.timeouts,
      rawB1 ? p.perSec / rawB1.perSec : undefined,
      p.serverCores,
      p.clientCores,
      p.serverEventLoopUtilization,
      p.otherCores,
      p.warmupS / p.rounds,
    ]);
    out.push(
      table(
        [
          { title: 'variant' },
          { title: 'conns' },
          { title: 'req/s', decimals: 0 },
          { title: 'p50 ms', decimals: 2 },
          { title: 'p99 ms', decimals: 2 },
          { title: 'mean ms', decimals: 2 },
          { title: 'req/run', decimals: 1, align: 'r' },
          { title: 'raw run ms', align: 'r' },
          { title: 'joined run ms', decimals: 2, align: 'r' },
          { title: 'non-2xx' },
          { title: 'errors' },
          { title: 'vs raw', decimals: 2, align: 'r' },
          { title: 'srv CPU', decimals: 2 },
          { title: 'cli CPU', decimals: 2 },
          { title: 'loop', decimals: 2 },
          { title: 'others', decimals: 2 },
          { title: 'warm-up s', decimals: 1 },
        ],
        sRows,
      ),
      '',
      '   (a) req/s, batching on / off (goal: >= 2x at 32 connections):',
      ...SERVER_CONNECTIONS.map((c) => {
        const off = serverPoint(r, OFF, c);
        const ratios = SERVER_VARIANTS.filter((x) => x.batching).map((x) => {
          const on = serverPoint(r, x.key, c);
          const ratio = (on?.perSec ?? NaN) / (off?.perSec ?? NaN);
          const verdict = c === 32 && Number.isFinite(ratio) ? (ratio >= 2 ? ' PASS' : ' FAIL') : '';
          return `${x.label} ${fmt(ratio, 2)}x (${fmt(on?.perSec)} / ${fmt(off?.perSec)})${verdict}`;
        });
        return `       ${String(c).padStart(3)} connections: ${ratios.join('; ')}`;
      }),
      "   (b) p99 vs bound, closed loop: saturated, so by Little's law mean latency = connections / req/s whatever the",
      '       batching does, and the bound cannot hold here (the open loop in 2b is the test):',
      ...r.server
        .filter((p) => p.batching)
        .map(
          (p) =>
            `       ${p.label}, ${String(p.connections).padStart(3)} connections: ${boundText(p.latencyMs.p99, p)} (mean ${fmt(
              (p.connections / p.perSec) * 1000,
              2,
            )} ms = ${p.connections} / ${fmt(p.perSec)}/s)`,
        ),
      `   (c) server / raw: ${SERVER_VARIANTS.filter((x) => x.batching)
        .map((x) => {
          const on = serverPoint(r, x.key, 32);
          return `${x.label} at 32 connections ${fmt((on?.perSec ?? NaN) / (rawB1?.perSec ?? NaN), 2)}x`;
        })
        .join('; ')} (raw batch 1: ${fmt(rawB1?.perSec)} runs/s)`,
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
      `   raw run at the batch sizes formed (after the server phase), us p50/p99 over n runs: ${r.rawAtBatch
        .flatMap((x) => x.points)
        .map((p) => `${p.batch} rows ${fmt(p.latency.p50)}/${fmt(p.latency.p99)} (${p.latency.n})`)
        .join('; ')}`,
      '',
    );
    const { warmupS, durationS, drainS, maxSockets, primeConnections } = CFG.openLoop;
    out.push(
      '2b. Open loop: a load generator in its own process sends batch-1 requests on a Poisson schedule, at',
      `   ${CFG.openLoop.shares.map((x) => `${(x * 100).toFixed(0)}%`).join(' and ')} of ${
        OPEN_LOOP_BASIS_SET === undefined
          ? `${basis?.label ?? OPEN_LOOP_BASIS.variant}'s closed-loop req/s at ${OPEN_LOOP_BASIS.connections} connections (${fmt(basis?.perSec)}/s)`
          : `${fmt(OPEN_LOOP_BASIS_SET)}/s (set by BENCH_OPEN_LOOP_BASIS)`
      }, and first at`,
      `   ${(CFG.openLoop.referenceShare * 100).toFixed(0)}%, near idle (one window): the floor without queueing, also against a plain Node echo server`,
      `   (no model). Each point is ${CFG.openLoop.rounds} window(s) of ${durationS} s, variants taking turns with the same schedule per round; per window a`,
      `   fresh generator opens ${primeConnections} connections (one request each), warms up ${warmupS} s, then waits up to ${drainS} s after the window`,
      `   for late answers (keep-alive, <= ${maxSockets} connections, queued beyond). Latency: from each request's scheduled send`,
      "   time to the end of its response (no coordinated omission), the generator's own lag included (lag: scheduled",
      `   time to send). A request with no 2xx answer by the end counts as infinitely late (">${fmt(drainS * 1000)}"). Percentiles`,
      "   pool the windows; p99/window is each window's own. sent/s and 2xx/s: in the windows.",
      '',
      table(
        [
          { title: 'rate' },
          { title: 'variant' },
          { title: 'sent/s', decimals: 0 },
          { title: '2xx/s', decimals: 0 },
          { title: 'p50 ms', align: 'r' },
          { title: 'p99 ms', align: 'r' },
          { title: 'p99/window', align: 'r' },
          { title: 'max ms', align: 'r' },
          { title: 'req/run', decimals: 1, align: 'r' },
          { title: 'raw run ms', align: 'r' },
          { title: 'joined run ms', decimals: 2, align: 'r' },
          { title: 'bound ms', decimals: 2, align: 'r' },
          { title: 'p99', align: 'l' },
          { title: 'non-2xx' },
          { title: 'errors' },
          { title: 'unanswered' },
          { title: 'lag p50/p99', align: 'r' },
          { title: 'srv CPU', decimals: 2 },
          { title: 'cli CPU', decimals: 2 },
          { title: 'loop', decimals: 2 },
          { title: 'others', decimals: 2 },
        ],
        r.openLoop.map((p) => [
          openRateText(p),
          p.label,
          p.sentPerSec,
          p.okPerSec,
          lateMs(p.latencyMs.p50),
          lateMs(p.latencyMs.p99),
          p.p99PerWindowMs.map((x) => lateMs(x, 1)).join(', '),
          lateMs(p.latencyMs.max, 1),
          p.requestsPerRun,
          rowsText(p.bound),
          p.meanJoinedRunMs,
          p.bound?.boundMs,
          p.bound === undefined
            ? p.batching
              ? 'n/a'
              : '-'
            : p.latencyMs.p99 !== null && p.latencyMs.p99 <= p.bound.boundMs
              ? 'within'
              : 'over',
          p.non2xx,
          p.errors,
          p.unanswered,
          `${fmt(p.sendLagMs.p50, 2)}/${fmt(p.sendLagMs.p99, 2)}`,
          p.serverCores,
          p.clientCores,
          p.serverEventLoopUtilization,
          p.otherCores,
        ]),
      ),
      '',
      '   p99 vs bound = maxLatencyMs + 2 x raw run at the batch formed, per batching-on point:',
      ...r.openLoop
        .filter((p) => p.batching)
        .map((p) => `       ${openRateText(p)}, ${p.label}: ${boundText(p.latencyMs.p99, p)}`),
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

  if (r.predict) {
    const pr = r.predict;
    out.push(
      `4. Batch: mdk predict (the real CLI; its job summary's rows/s) on ${fmt(pr.rows)} rows of the ${label(TARGET_MODEL)} model,`,
      `   batch ${pr.batchSize}, against the same rows through (a) raw session.run at batch ${pr.batchSize} (tensors built`,
      '   beforehand; the options mdk predict uses) and (b) readline + the core RowReader alone (no model).',
      `   rows/s, median of ${CFG.predict.rounds} round(s); a round runs (a), (b) and mdk predict in turn.`,
      '',
      table(
        [
          { title: 'format' },
          { title: 'file MB', decimals: 0 },
          { title: 'mdk predict', decimals: 0 },
          { title: '(a) raw run', decimals: 0 },
          { title: '(b) read+parse', decimals: 0 },
          { title: 'predict / slower', decimals: 2 },
          { title: 'predict / (a+b in series)', decimals: 2 },
        ],
        pr.points.map((p) => [
          p.format,
          p.fileBytes / 1e6,
          p.predict,
          p.raw,
          p.parse,
          p.predict / Math.min(p.raw, p.parse),
          // What one thread doing both, one after the other, would reach: 1 / (1/a + 1/b).
          p.predict / (1 / (1 / p.raw + 1 / p.parse)),
        ]),
      ),
      '',
    );
  } else {
    out.push('4. Batch: skipped (BENCH_ONLY)', '');
  }

  if (r.capture) {
    const c = r.capture;
    const ratio = (h: HandlerChildResult, batch: number, variant: string, base: string) => {
      const a = find([h], c.model, batch, variant)?.mean;
      const b = find([h], c.model, batch, base)?.mean;
      return a !== undefined && b !== undefined ? a / b : undefined;
    };
    const rows: Cell[][] = [];
    for (const batch of BATCHES) {
      for (const [body, variant, base] of [
        ['JSON', 'handler-json', 'raw-run+parse'],
        ['binary', 'handler-binary', 'raw-run'],
      ] as const) {
        const off = ratio(c.off, batch, variant, base);
        const on = ratio(c.on, batch, variant, base);
        const usOff = find([c.off], c.model, batch, variant)?.mean;
        const usOn = find([c.on], c.model, batch, variant)?.mean;
        rows.push([
          body,
          batch,
          usOff,
          usOn,
          off,
          on,
          usOn !== undefined && usOff !== undefined ? (usOn - usOff) / batch : undefined,
        ]);
      }
    }
    out.push(
      `5. Data capture: the handler of section 1 run twice on the ${label(c.model)} model, capture off and at 100 %`,
      '   (every row of every request written as a capture line to stdout, piped to this process as Lambda pipes it).',
      '   Each run measures its handler against the raw session.run in the same process; the columns are those ratios.',
      `   stdout per batch-1 request: ${fmt(c.off.stdoutBytesPerRequest)} B off, ${fmt(c.on.stdoutBytesPerRequest)} B on.`,
      '',
      table(
        [
          { title: 'body' },
          { title: 'batch' },
          { title: 'us off', decimals: 0 },
          { title: 'us on', decimals: 0 },
          { title: 'off / base', decimals: 2 },
          { title: 'on / base', decimals: 2 },
          { title: 'us per captured row', decimals: 1 },
        ],
        rows,
      ),
      '',
    );
  } else {
    out.push('5. Data capture: skipped (BENCH_ONLY)', '');
  }

  out.push(`6. Goals (model: ${label(TARGET_MODEL)})`, '');
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

// ---- batch prediction ----

async function benchPredict(model: ModelCase, tmp: string): Promise<PredictChildResult> {
  const { rows, rounds, batchSize } = CFG.predict;
  progress(`predict: writing ${rows} rows of ${model.features} features as CSV and JSONL`);
  const rand = seededRandom(99);
  const csv: string[] = [];
  const jsonl: string[] = [];
  for (let i = 0; i < rows; i++) {
    const values = Array.from({ length: model.features }, () => Math.fround(rand() * 2 - 1));
    csv.push(values.join(','));
    jsonl.push(`[${values.join(',')}]`);
  }
  const files = { csv: path.join(tmp, 'rows.csv'), jsonl: path.join(tmp, 'rows.jsonl') };
  await fs.writeFile(files.csv, `${csv.join('\n')}\n`);
  await fs.writeFile(files.jsonl, `${jsonl.join('\n')}\n`);
  csv.length = 0;
  jsonl.length = 0;
  const args: PredictChildArgs = {
    modelDir: model.dir,
    files,
    rows,
    features: model.features,
    batchSize,
    rounds,
    workDir: tmp,
  };
  progress(`predict: mdk predict vs raw session.run vs read + parse, ${rounds} round(s)`);
  const out = execFileSync(process.execPath, [...TSX_ARGS, child('predict-child.ts'), JSON.stringify(args)], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 1 << 20,
    timeout: 5 * 60_000,
  });
  return JSON.parse(out) as PredictChildResult;
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
    let server: ServerPoint[] = [];
    let openLoop: OpenLoopPoint[] = [];
    const rawAtBatch: RawChildResult[] = [];
    let cold: ColdSummary[] = [];
    let deps: { module: string; ms: number }[] = [];
    if (ONLY.has('handler')) {
      phase('handler');
      for (const m of models) handler.push(await benchHandler(m));
    }
    if (ONLY.has('server')) {
      // The server is measured on the target model only; the raw loop is its baseline.
      const target = models.find((m) => m.key === TARGET_MODEL) as ModelCase;
      phase('raw');
      raw.push(await benchRaw(target));
      // One phase for the closed and open loop: /proc/self/stat counts a child's CPU only once it is reaped,
      // and the server children live through both.
      phase('server');
      const measured = await benchServer(target);
      phase('raw at batch');
      const rows = [...new Set(formedRows([...measured.closed, ...measured.open]))].sort((a, b) => a - b);
      if (rows.length > 0) rawAtBatch.push(await benchRawAtBatch(target, rows));
      server = measured.closed.map((p) => withBound(p, rawAtBatch[0]));
      openLoop = measured.open.map((p) => withBound(p, rawAtBatch[0]));
    }
    let predict: PredictChildResult | undefined;
    if (ONLY.has('predict')) {
      phase('predict');
      predict = await benchPredict(models.find((m) => m.key === TARGET_MODEL) as ModelCase, tmp);
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
    let capture: CaptureBench | undefined;
    if (ONLY.has('capture')) {
      phase('capture');
      capture = await benchCapture(models.find((m) => m.key === TARGET_MODEL) as ModelCase);
    }
    phase(undefined);

    const results: Results = {
      machine,
      models,
      handler,
      raw,
      server,
      openLoop,
      rawAtBatch,
      cold,
      deps,
      predict,
      capture,
      cpu,
    };
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
