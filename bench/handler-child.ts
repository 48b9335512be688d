/**
 * Bench child: times the real Lambda handler against a raw onnxruntime session
 * in one process, then times the handler's stages one by one.
 * Spawned by bench/run.ts with MODEL_URI set and stdout on /dev/null (the
 * handler's log and EMF lines are real cost, but would bury the table).
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import * as ort from 'onnxruntime-node';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { toHttpRequest, toProxyResult, type ProxyEvent, type ProxyResult } from '../lambda/core/apigw';
import { encodeResponse, HEADER_LENGTH, parseBody, prepareInference } from '../lambda/core/codec';
import { resolveLimits, type Limits } from '../lambda/core/limits';
import { defaultThreads, OnnxModel } from '../lambda/core/model';
import { runtimeConfigFromEnv } from '../lambda/core/runtime-config';
import { handler, ready } from '../lambda/handlers/api';
import {
  binaryEvent,
  buildWorkload,
  childArg,
  errorText,
  jsonEvent,
  lambdaContext,
  medianOfRounds,
  median,
  restEvent,
  sendToParent,
  stats,
  timeLoop,
  type Bound,
  type ModelCase,
  type StageResult,
  type Stats,
  type TelemetryResult,
  type VariantResult,
} from './common';

export interface HandlerChildArgs {
  readonly model: ModelCase;
  readonly batches: readonly number[];
  readonly rounds: number;
  readonly warmup: Bound;
  readonly block: Bound;
  readonly stageRounds: number;
  readonly stageBlock: Bound;
}

export const VARIANTS = ['handler-json', 'handler-binary', 'raw-run', 'raw-run+parse'] as const;

const args = childArg<HandlerChildArgs>();
const context = lambdaContext();
let sink: unknown;

async function invoke(event: ProxyEvent): Promise<ProxyResult> {
  const res = await handler(event, context);
  if (res.statusCode !== 200) {
    throw new Error(`handler answered ${res.statusCode}: ${String(res.body).slice(0, 300)}`);
  }
  return res;
}

/** One FP32 output's values from a binary-extension answer (base64: JSON header, then raw bytes). */
function binaryOutput(res: ProxyResult, name: string): number[] {
  const body = Buffer.from(String(res.body), 'base64');
  const headerLength = Number(res.headers?.[HEADER_LENGTH]);
  const header = JSON.parse(body.toString('utf8', 0, headerLength)) as {
    outputs: { name: string; parameters?: { binary_data_size?: number } }[];
  };
  let at = headerLength;
  for (const o of header.outputs) {
    const size = o.parameters?.binary_data_size ?? 0;
    if (o.name === name) {
      const bytes = Buffer.from(body.subarray(at, at + size)); // a copy, so the offset is aligned
      return Array.from(new Float32Array(bytes.buffer, bytes.byteOffset, size / 4));
    }
    at += size;
  }
  throw new Error(`binary answer has no output '${name}'`);
}

/** The handler must give what the raw session gives, or the comparison means nothing. */
function checkSame(label: string, handlerData: readonly number[], raw: ort.Tensor): void {
  const want = raw.data as Float32Array;
  if (handlerData.length !== want.length) {
    throw new Error(`${label}: ${handlerData.length} values, raw has ${want.length}`);
  }
  for (let i = 0; i < want.length; i++) {
    if (
      Math.abs((handlerData[i] as number) - (want[i] as number)) >
      1e-4 * (1 + Math.abs(want[i] as number))
    ) {
      throw new Error(`${label}: value ${i} is ${handlerData[i]}, raw session gives ${want[i]}`);
    }
  }
}

/** Captures what the handler writes to stdout per request, to show which of the request log line and EMF are on. */
async function stdoutPerRequest(
  event: ProxyEvent,
  n: number,
): Promise<{ lines: number; bytes: number; logLine: boolean; emfLine: boolean }> {
  const original = process.stdout.write.bind(process.stdout);
  let text = '';
  process.stdout.write = (chunk: string | Uint8Array, ...rest: never[]) => {
    text += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8');
    return original(chunk, ...rest);
  };
  try {
    for (let i = 0; i < n; i++) await invoke(event);
  } finally {
    process.stdout.write = original;
  }
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return {
    lines: lines.length / n,
    bytes: Buffer.byteLength(text) / n,
    logLine: lines.some((l) => l.includes('"message":"request"')),
    emfLine: lines.some((l) => l.includes('"_aws"')),
  };
}

async function main(): Promise<void> {
  const { model } = args;
  await ready;
  const health = await handler(restEvent('GET', '/v2/health/ready', null, false), context);
  if (health.statusCode !== 200) throw new Error(`model did not load: ${health.body}`);

  const threads = runtimeConfigFromEnv(process.env).intraOpNumThreads ?? defaultThreads();
  const bytes = await readFile(path.join(model.dir, 'model.onnx'));
  // OnnxModel.create is how the core makes its session, so the raw session has exactly the same options.
  const own = await OnnxModel.create(bytes, {
    name: model.name,
    version: 'bench',
    session: { intraOpNumThreads: threads },
  });
  const session = own.session;
  // The handler's limits: the environment's, over its 6 MB payload default.
  const limits = resolveLimits(
    runtimeConfigFromEnv(process.env, { maxPayloadBytes: 6 * 1024 * 1024 }).limits,
  );

  const variants: VariantResult[] = [];
  const stageResults: StageResult[] = [];
  let perRequestOut = { lines: 0, bytes: 0, logLine: false, emfLine: false };

  for (const batch of args.batches) {
    const w = buildWorkload(model, batch);
    const feeds = { [model.input]: new ort.Tensor('float32', w.values, [...w.shape]) };
    const jsonEv = jsonEvent(model, w);
    const binEv = binaryEvent(model, w);

    const raw = await session.run(feeds);
    const firstOut = own.tensorOutputs[0] as string;
    const hj = JSON.parse(String((await invoke(jsonEv)).body)) as {
      outputs: { name: string; data: number[] }[];
    };
    checkSame(
      `${model.key} json b${batch}`,
      hj.outputs.find((o) => o.name === firstOut)?.data ?? [],
      raw[firstOut] as ort.Tensor,
    );
    const hb = await invoke(binEv);
    if (!('isBase64Encoded' in hb) || hb.isBase64Encoded !== true) {
      throw new Error('binary request did not get a binary answer');
    }
    checkSame(`${model.key} binary b${batch}`, binaryOutput(hb, firstOut), raw[firstOut] as ort.Tensor);
    if (batch === args.batches[0]) perRequestOut = await stdoutPerRequest(jsonEv, 20);

    const fns: Record<(typeof VARIANTS)[number], () => Promise<unknown>> = {
      'handler-json': () => invoke(jsonEv),
      'handler-binary': () => invoke(binEv),
      'raw-run': () => session.run(feeds),
      'raw-run+parse': () => {
        sink = JSON.parse(w.jsonBody);
        return session.run(feeds);
      },
    };
    for (const v of VARIANTS) await timeLoop(fns[v], args.warmup);
    const rounds = new Map<string, Stats[]>(VARIANTS.map((v) => [v, []]));
    for (let r = 0; r < args.rounds; r++) {
      // Rotate the order each round so no variant always runs first (or right after GC-heavy JSON).
      for (let k = 0; k < VARIANTS.length; k++) {
        const v = VARIANTS[(k + r) % VARIANTS.length] as (typeof VARIANTS)[number];
        rounds.get(v)?.push(stats(await timeLoop(fns[v], args.block)));
      }
    }
    for (const v of VARIANTS) {
      const rs = rounds.get(v) ?? [];
      variants.push({ model: model.key, batch, variant: v, rounds: rs, summary: medianOfRounds(rs) });
    }

    for (const [format, ev] of [
      ['json', jsonEv],
      ['binary', binEv],
    ] as const) {
      stageResults.push(await profileStages(own, limits, batch, format, ev));
    }
  }
  const telemetry = await profileTelemetry(model.name);
  await own.release();
  await sendToParent({
    kind: 'handler',
    model: model.key,
    intraOpNumThreads: threads,
    logLevel: new Logger().getLevelName(),
    logsOn: perRequestOut.logLine,
    metricsOn: perRequestOut.emfLine,
    stdoutLinesPerRequest: perRequestOut.lines,
    stdoutBytesPerRequest: perRequestOut.bytes,
    variants,
    stages: stageResults,
    telemetry,
  });
}

/**
 * The handler's pipeline (handlers/api.ts, then InferenceService.infer without batching, as in Lambda) re-done
 * step by step with the same core functions and the same Powertools setup, with a clock between steps.
 * Left out: service.handle's routing (a regexp and a model lookup), which the handler also runs.
 *
 * The handler's `logger.debug('request', ...)` is called here too, with the same fields. At the default
 * INFO level it writes nothing and is timed with toProxyResult; when DEBUG is on, it is a stage of its own.
 */
async function profileStages(
  model: OnnxModel,
  limits: Limits,
  batch: number,
  format: StageResult['format'],
  event: ProxyEvent,
): Promise<StageResult> {
  const logger = new Logger({ serviceName: 'model-deploy-kit' });
  const metrics = new Metrics({ namespace: 'ModelDeployKit', serviceName: 'model-deploy-kit' });
  metrics.setDefaultDimensions({ model: model.name });
  const debugOn = ['TRACE', 'DEBUG'].includes(logger.getLevelName());
  const names = [
    'logger.addContext',
    'event -> request (toHttpRequest)',
    'parseBody',
    'prepareInference',
    'session.run (OnnxModel.run)',
    'metrics.addMetric x3',
    'encodeResponse',
    ...(debugOn ? ['request log line (logger.debug, on)'] : []),
    debugOn ? 'toProxyResult' : 'toProxyResult (+ logger.debug, off)',
    'publishStoredMetrics (EMF line)',
  ];
  const once = async (acc: number[]): Promise<void> => {
    const t: number[] = [performance.now()];
    logger.addContext(context);
    const started = performance.now();
    t.push(started);
    const req = toHttpRequest(event);
    t.push(performance.now());
    const raw = parseBody(req.body, req.headers[HEADER_LENGTH], limits);
    t.push(performance.now());
    const prepared = prepareInference(model, raw, limits);
    t.push(performance.now());
    const runStarted = performance.now();
    const results = await model.run(prepared.feeds, prepared.fetches);
    const done = performance.now();
    t.push(done);
    metrics.addMetric('InferenceLatency', MetricUnit.Milliseconds, done - runStarted);
    metrics.addMetric('RequestLatency', MetricUnit.Milliseconds, done - started);
    metrics.addMetric('BatchSize', MetricUnit.Count, prepared.batchSize);
    t.push(performance.now());
    const encoded = encodeResponse({ modelName: model.name, modelVersion: model.version }, prepared, results);
    t.push(performance.now());
    logger.debug('request', {
      method: req.method,
      path: req.path,
      status: 200,
      ms: Math.round((performance.now() - started) * 1000) / 1000,
    });
    if (debugOn) t.push(performance.now());
    sink = toProxyResult({ status: 200, headers: encoded.headers, body: encoded.body });
    t.push(performance.now());
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    t.push(performance.now());
    for (let i = 0; i < acc.length; i++) {
      acc[i] = (acc[i] as number) + ((t[i + 1] as number) - (t[i] as number)) * 1000;
    }
  };
  await timeLoop(() => once(new Array<number>(names.length).fill(0)), args.warmup);
  const perRound: number[][] = [];
  for (let r = 0; r < args.stageRounds; r++) {
    const acc = new Array<number>(names.length).fill(0);
    const n = (await timeLoop(() => once(acc), args.stageBlock)).length;
    perRound.push(acc.map((x) => x / n));
  }
  const stages = names.map((stage, i) => ({ stage, us: median(perRound.map((r) => r[i] as number)) }));
  return {
    model: args.model.key,
    batch,
    format,
    stages,
    totalUs: stages.reduce((a, x) => a + x.us, 0),
  };
}

/** What the handler's per-request telemetry costs as shipped, and with the request log line turned on. */
async function profileTelemetry(modelName: string): Promise<TelemetryResult[]> {
  const metrics = new Metrics({ namespace: 'ModelDeployKit', serviceName: 'model-deploy-kit' });
  metrics.setDefaultDimensions({ model: modelName });
  const fields = { method: 'POST', path: `/v2/models/${modelName}/infer`, status: 200, ms: 1.234 };
  const perRequest = (logger: Logger) => () => {
    logger.addContext(context);
    metrics.addMetric('InferenceLatency', MetricUnit.Milliseconds, 1.5);
    metrics.addMetric('RequestLatency', MetricUnit.Milliseconds, 1.7);
    metrics.addMetric('BatchSize', MetricUnit.Count, 64);
    logger.debug('request', fields);
    if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
  };
  const level = new Logger().getLevelName();
  const options: [string, () => void][] = [
    [
      `as shipped at ${level}: addContext, 3 metrics, logger.debug, EMF line`,
      perRequest(new Logger({ serviceName: 'model-deploy-kit' })),
    ],
    [
      'the same at log level DEBUG (request line written)',
      perRequest(new Logger({ serviceName: 'model-deploy-kit', logLevel: 'DEBUG' })),
    ],
    ['no per-request telemetry (loop floor)', () => undefined],
  ];
  const out: TelemetryResult[] = [];
  for (const [option, fn] of options) {
    const call = () => Promise.resolve(fn());
    await timeLoop(call, args.warmup);
    const rounds: number[] = [];
    for (let r = 0; r < args.stageRounds; r++) rounds.push(stats(await timeLoop(call, args.stageBlock)).mean);
    out.push({ option, us: median(rounds) });
  }
  return out;
}

main().then(
  () => {
    void sink;
    process.exit(0);
  },
  async (err: unknown) => {
    await sendToParent({ kind: 'error', message: errorText(err) }).catch(() => undefined);
    process.exit(1);
  },
);
