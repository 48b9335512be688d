/**
 * Shared by the bench orchestrator and its child processes: the models and
 * workloads under test, request/event builders, bounded timing loops and stats.
 * Kept free of onnxruntime so the cold-start child does not load it early.
 */
import type { APIGatewayProxyEvent, Context } from 'aws-lambda';
import type { BatchingStats } from '../lambda/core/batcher';
import { seededRandom } from '../models/onnx-builder';

/** A model under test, as handed to a child process. */
export interface ModelCase {
  readonly key: string;
  readonly label: string;
  /** A model folder (model.onnx, optionally model.json). */
  readonly dir: string;
  /** The name the service gives it (manifest name, else folder name). */
  readonly name: string;
  readonly input: string;
  readonly features: number;
  /** Decimals in the JSON numbers; undefined for full float32 precision, as numpy's tolist() sends. */
  readonly decimals?: number;
}

/** One request's payload in both encodings. */
export interface Workload {
  readonly batch: number;
  readonly values: Float32Array;
  readonly shape: readonly number[];
  /** V2 JSON body, flat data. */
  readonly jsonBody: string;
  /** JSON header then raw little-endian FP32 bytes, asking for binary outputs too. */
  readonly binaryBody: Buffer;
  readonly headerLength: number;
}

export function buildWorkload(model: ModelCase, batch: number): Workload {
  const rand = seededRandom(1234 + batch);
  const n = batch * model.features;
  const values = new Float32Array(n);
  const scale = model.decimals === undefined ? 1 : 10 ** model.decimals;
  for (let i = 0; i < n; i++) {
    const v = model.decimals === undefined ? rand() * 2 - 1 : Math.round(rand() * 8 * scale) / scale;
    values[i] = v;
  }
  const shape = [batch, model.features];
  // Float32 values printed as JS doubles: the ~19-character numbers real clients send.
  const data =
    model.decimals === undefined ? Array.from(values) : Array.from(values, (v) => Number(v.toFixed(1)));
  const jsonBody = JSON.stringify({ inputs: [{ name: model.input, shape, datatype: 'FP32', data }] });
  const header = Buffer.from(
    JSON.stringify({
      inputs: [{ name: model.input, shape, datatype: 'FP32', parameters: { binary_data_size: n * 4 } }],
      parameters: { binary_data_output: true },
    }),
    'utf8',
  );
  const bytes = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
  return {
    batch,
    values,
    shape,
    jsonBody,
    binaryBody: Buffer.concat([header, bytes]),
    headerLength: header.length,
  };
}

export function inferPath(model: ModelCase): string {
  return `/v2/models/${model.name}/infer`;
}

/** A REST API (v1) proxy event as API Gateway sends it, with its usual headers. */
export function restEvent(
  method: string,
  path: string,
  body: string | null,
  isBase64Encoded: boolean,
  extraHeaders: Record<string, string> = {},
): APIGatewayProxyEvent {
  const headers: Record<string, string> = {
    Accept: '*/*',
    'Content-Type': isBase64Encoded ? 'application/octet-stream' : 'application/json',
    Host: 'abc123.execute-api.eu-west-1.amazonaws.com',
    'User-Agent': 'python-requests/2.32.3',
    'X-Amzn-Trace-Id': 'Root=1-67000000-0123456789abcdef01234567',
    'X-Forwarded-For': '203.0.113.10',
    'X-Forwarded-Port': '443',
    'X-Forwarded-Proto': 'https',
    ...extraHeaders,
  };
  const multiValueHeaders = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, [v]]));
  return {
    resource: '/{proxy+}',
    path,
    httpMethod: method,
    headers,
    multiValueHeaders,
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: { proxy: path.slice(1) },
    stageVariables: null,
    body,
    isBase64Encoded,
    requestContext: {
      accountId: '123456789012',
      apiId: 'abc123',
      authorizer: {},
      protocol: 'HTTP/1.1',
      httpMethod: method,
      identity: {
        accessKey: null,
        accountId: null,
        apiKey: null,
        apiKeyId: null,
        caller: null,
        clientCert: null,
        cognitoAuthenticationProvider: null,
        cognitoAuthenticationType: null,
        cognitoIdentityId: null,
        cognitoIdentityPoolId: null,
        principalOrgId: null,
        sourceIp: '203.0.113.10',
        user: null,
        userAgent: 'python-requests/2.32.3',
        userArn: null,
      },
      path: `/prod${path}`,
      stage: 'prod',
      requestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef',
      requestTimeEpoch: 1_700_000_000_000,
      resourceId: 'abcdef',
      resourcePath: '/{proxy+}',
    },
  };
}

export function jsonEvent(model: ModelCase, w: Workload): APIGatewayProxyEvent {
  return restEvent('POST', inferPath(model), w.jsonBody, false);
}

export function binaryEvent(model: ModelCase, w: Workload): APIGatewayProxyEvent {
  return restEvent('POST', inferPath(model), w.binaryBody.toString('base64'), true, {
    'Inference-Header-Content-Length': String(w.headerLength),
  });
}

/** The Lambda context the runtime passes; the handler adds it to every log line. */
export function lambdaContext(): Context {
  const noop = (): void => undefined;
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName: 'ModelServing-dev-Inference',
    functionVersion: '$LATEST',
    invokedFunctionArn: 'arn:aws:lambda:eu-west-1:123456789012:function:ModelServing-dev-Inference',
    memoryLimitInMB: '2048',
    awsRequestId: '6b5f2c1e-0000-4000-8000-000000000000',
    logGroupName: '/aws/lambda/ModelServing-dev-Inference',
    logStreamName: '2025/01/01/[$LATEST]0123456789abcdef',
    getRemainingTimeInMillis: () => 30_000,
    done: noop,
    fail: noop,
    succeed: noop,
  };
}

/** Environment a Lambda function sees, so Powertools writes the same log and EMF lines it would there. */
export function lambdaLikeEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  // Dev mode would pretty-print logs and disable metrics: not what runs in Lambda.
  delete env.POWERTOOLS_DEV;
  delete env.POWERTOOLS_METRICS_DISABLED;
  delete env.POWERTOOLS_LOG_LEVEL;
  env.AWS_REGION ??= 'eu-west-1';
  env.AWS_LAMBDA_FUNCTION_NAME ??= 'ModelServing-dev-Inference';
  env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ??= '2048';
  env.AWS_LAMBDA_FUNCTION_VERSION ??= '$LATEST';
  return env;
}

// ---- timing and statistics ----

export interface Stats {
  readonly n: number;
  readonly mean: number;
  readonly p50: number;
  readonly p99: number;
}

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[idx] as number;
}

export function stats(samples: readonly number[]): Stats {
  const sorted = [...samples].sort((a, b) => a - b);
  const sum = sorted.reduce((a, b) => a + b, 0);
  return {
    n: sorted.length,
    mean: sorted.length ? sum / sorted.length : NaN,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
  };
}

export function median(values: readonly number[]): number {
  return percentile(
    [...values].sort((a, b) => a - b),
    50,
  );
}

/** Per-round stats reduced to one figure each: the median over rounds, so one noisy round does not decide. */
export function medianOfRounds(rounds: readonly Stats[]): Stats {
  return {
    n: rounds.reduce((a, r) => a + r.n, 0),
    mean: median(rounds.map((r) => r.mean)),
    p50: median(rounds.map((r) => r.p50)),
    p99: median(rounds.map((r) => r.p99)),
  };
}

export interface Bound {
  readonly maxIters: number;
  readonly maxMs: number;
}

/** Runs `fn` back to back until either bound is hit; returns each call's time in µs. */
export async function timeLoop(fn: () => Promise<unknown>, bound: Bound): Promise<number[]> {
  const samples: number[] = [];
  const deadline = performance.now() + bound.maxMs;
  for (let i = 0; i < bound.maxIters; i++) {
    const t0 = performance.now();
    await fn();
    const t1 = performance.now();
    samples.push((t1 - t0) * 1000);
    if (t1 >= deadline) break;
  }
  return samples;
}

// ---- messages from the child processes ----

export interface VariantResult {
  readonly model: string;
  readonly batch: number;
  readonly variant: string;
  readonly rounds: readonly Stats[];
  readonly summary: Stats;
}

export interface StageResult {
  readonly model: string;
  readonly batch: number;
  readonly format: 'json' | 'binary';
  /** Median over rounds of each stage's mean time per request, µs, in pipeline order. */
  readonly stages: readonly { readonly stage: string; readonly us: number }[];
  readonly totalUs: number;
}

export interface TelemetryResult {
  readonly option: string;
  /** Mean µs per request, median over rounds. */
  readonly us: number;
}

export interface HandlerChildResult {
  readonly kind: 'handler';
  readonly model: string;
  readonly intraOpNumThreads: number;
  /** The Powertools log level the handler runs at (POWERTOOLS_LOG_LEVEL etc.; INFO by default). */
  readonly logLevel: string;
  /** Seen on stdout: the per-request log line (DEBUG), and the EMF line. */
  readonly logsOn: boolean;
  readonly metricsOn: boolean;
  readonly stdoutLinesPerRequest: number;
  readonly stdoutBytesPerRequest: number;
  readonly variants: readonly VariantResult[];
  readonly stages: readonly StageResult[];
  readonly telemetry: readonly TelemetryResult[];
}

export interface RawChildResult {
  readonly kind: 'raw';
  readonly model: string;
  readonly points: readonly {
    readonly batch: number;
    readonly runs: number;
    readonly seconds: number;
    readonly perSec: number;
    readonly latency: Stats;
    /** CPU time over wall time while running: cores kept busy. */
    readonly coresBusy: number;
  }[];
}

export interface ColdChildResult {
  readonly kind: 'cold';
  /** performance.now() (ms since this process started) at the first line of the bench script. */
  readonly scriptStartMs: number;
  /** ...when the handler module had been required (it starts loading the model at import). */
  readonly importedMs: number;
  /** ...when the handler's `ready` settled. */
  readonly readyMs: number;
  /** The first request after ready, through the handler. */
  readonly firstRequestMs: number;
  readonly firstStatus: number;
  /** Whether @aws-sdk/client-s3 was in the require cache once the (local) model was ready. */
  readonly s3SdkLoaded: boolean;
}

export interface DepsResult {
  readonly kind: 'deps';
  readonly scriptStartMs: number;
  /** Time to require each module, in order, in one fresh process. */
  readonly modules: readonly { readonly module: string; readonly ms: number }[];
}

export interface OpenLoopResult {
  readonly kind: 'openLoop';
  /** Seconds from the window opening to closing, as this process timed it. */
  readonly seconds: number;
  /** Requests scheduled inside the window, and of those: sent (written or queued) before the window closed, */
  readonly scheduled: number;
  readonly sentInWindow: number;
  /** ...answered 2xx, answered otherwise, failed (socket error), and not answered by the end of the drain. */
  readonly ok: number;
  readonly non2xx: number;
  readonly errors: number;
  readonly unanswered: number;
  /** 2xx responses (any request's) that ended inside the window, per second: the throughput. */
  readonly okPerSec: number;
  /**
   * Per window request, ms from its scheduled send time to the end of its response; null for one without a
   * 2xx answer (infinitely late), so the parent can pool windows.
   */
  readonly latencyMs: readonly (number | null)[];
  /** Per window request sent, ms from its scheduled send time to its send (write or queue): the generator's own lag, part of latencyMs. */
  readonly sendLagMs: readonly number[];
  /** This process's CPU time in the window, µs. */
  readonly cpuUs: number;
}

export type ChildMessage =
  | HandlerChildResult
  | OpenLoopResult
  /** The open-loop load generator's window has opened / closed (its warm-up is over / its last scheduled send is due). */
  | { readonly kind: 'windowOpen' }
  | { readonly kind: 'windowClose' }
  | DepsResult
  | RawChildResult
  | ColdChildResult
  | { readonly kind: 'listening'; readonly url: string }
  /** The server child's counters since it started, on request. */
  | {
      readonly kind: 'serverStats';
      /** service.batchingStats(): per model, session runs, the requests they served, and the runs that joined >= 2. */
      readonly batching: Readonly<Record<string, BatchingStats>>;
      /** process.cpuUsage(), user + system, µs: the main thread and onnxruntime's intra-op threads. */
      readonly cpuUs: number;
      /** performance.eventLoopUtilization(): the main thread's idle and active time. */
      readonly eventLoop: { readonly idleMs: number; readonly activeMs: number };
    }
  | { readonly kind: 'ready'; readonly readyMs: number }
  | { readonly kind: 'error'; readonly message: string };

export function errorText(err: unknown): string {
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

/** Sends a message to the parent and waits until it is handed to the OS. */
export function sendToParent(msg: ChildMessage): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!process.send) {
      reject(new Error('this script is a bench child; run it with `npm run bench`'));
      return;
    }
    process.send(msg, undefined, {}, (err: Error | null) => (err ? reject(err) : resolve()));
  });
}

/** Reads the child's JSON argument. */
export function childArg<T>(): T {
  const raw = process.argv[2];
  if (raw === undefined) throw new Error('missing JSON argument; run this through `npm run bench`');
  return JSON.parse(raw) as T;
}
