/**
 * The scheduled drift job: reads a window of one model's captures from S3 (as Firehose files them), bins them
 * per version against the version's baseline from the model bucket, publishes the drift as CloudWatch metrics
 * and writes a JSON report per version. The handler (handlers/drift.ts) only wires clients and config to it.
 */
import {
  PutMetricDataCommand,
  StandardUnit,
  type CloudWatchClient,
  type MetricDatum,
} from '@aws-sdk/client-cloudwatch';
import { GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { captureLines, isCaptureRecord } from './capture-record';
import { DEFAULT_MIN_ROWS, DEFAULT_PSI_THRESHOLD, DriftAccumulator, type DriftReport } from './drift';
import { intVar } from './runtime-config';
import type { ModelManifest } from './types';

export const DEFAULT_CAPTURE_PREFIX = 'captures/';
export const DEFAULT_REPORT_PREFIX = 'drift-reports/';
export const DEFAULT_WINDOW_HOURS = 24;
export const DEFAULT_METRIC_NAMESPACE = 'ModelDeployKit';
/** PutMetricData takes at most this many metrics per call. */
export const MAX_METRICS_PER_CALL = 1000;
/**
 * Firehose files a record under the day it arrived, which is after it was captured (its buffer holds data up
 * to 15 minutes, and the log subscription adds a little): the job also reads the day after the window's end
 * when the end is this close to midnight.
 */
const ARRIVAL_SLACK_MS = 60 * 60 * 1000;
const HOUR_MS = 60 * 60 * 1000;
/** CloudWatch accepts data points up to two weeks old and two hours ahead; a replay of older data gets reports only. */
const METRIC_MAX_AGE_MS = 14 * 24 * HOUR_MS - HOUR_MS;
const METRIC_MAX_AHEAD_MS = 2 * HOUR_MS;

/** The drift function's environment, parsed. */
export interface DriftJobConfig {
  /** CAPTURE_BUCKET */
  readonly captureBucket: string;
  /** CAPTURE_PREFIX @default 'captures/' */
  readonly capturePrefix: string;
  /** REPORT_PREFIX @default 'drift-reports/' */
  readonly reportPrefix: string;
  /** MODEL_BUCKET: where `<name>/<version>/model.json` is. */
  readonly modelBucket: string;
  /** MODEL_NAME */
  readonly modelName: string;
  /** WINDOW_HOURS @default 24 */
  readonly windowHours: number;
  /** MIN_ROWS: a version with fewer captured rows in the window gets no drift. @default 100 */
  readonly minRows: number;
  /** PSI_THRESHOLD: a column at or over it is drifted. @default 0.2 */
  readonly psiThreshold: number;
  /** METRIC_NAMESPACE @default 'ModelDeployKit' */
  readonly namespace: string;
}

function required(env: Readonly<Record<string, string | undefined>>, key: string, what: string): string {
  const v = env[key];
  if (v === undefined || v.trim() === '') throw new Error(`${key} is not set: give ${what}`);
  return v;
}

function prefixVar(env: Readonly<Record<string, string | undefined>>, key: string, fallback: string): string {
  const v = env[key];
  if (v === undefined || v === '') return fallback;
  if (!v.endsWith('/') || v.startsWith('/')) {
    throw new Error(
      `${key} must be a key prefix ending in '/' (and not starting with one), got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function positiveNumber(
  env: Readonly<Record<string, string | undefined>>,
  key: string,
  fallback: number,
): number {
  const raw = env[key];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (raw.trim() !== raw || !Number.isFinite(n) || n <= 0) {
    throw new Error(`${key} must be a number over 0, got ${JSON.stringify(raw)}`);
  }
  return n;
}

export function driftJobConfigFromEnv(env: Readonly<Record<string, string | undefined>>): DriftJobConfig {
  const modelName = required(env, 'MODEL_NAME', "the model's name, as in its manifest and capture records");
  if (modelName.includes('/'))
    throw new Error(`MODEL_NAME must not contain '/', got ${JSON.stringify(modelName)}`);
  const namespace = env.METRIC_NAMESPACE || DEFAULT_METRIC_NAMESPACE;
  // CloudWatch refuses custom metrics in the AWS/ namespaces.
  if (namespace.startsWith('AWS/') || namespace.trim() !== namespace) {
    throw new Error(
      `METRIC_NAMESPACE must not start with 'AWS/' or have spaces around it, got ${JSON.stringify(namespace)}`,
    );
  }
  return {
    captureBucket: required(env, 'CAPTURE_BUCKET', 'the bucket Firehose writes captures to'),
    capturePrefix: prefixVar(env, 'CAPTURE_PREFIX', DEFAULT_CAPTURE_PREFIX),
    reportPrefix: prefixVar(env, 'REPORT_PREFIX', DEFAULT_REPORT_PREFIX),
    modelBucket: required(env, 'MODEL_BUCKET', 'the bucket that holds <name>/<version>/model.json'),
    modelName,
    windowHours: positiveNumber(env, 'WINDOW_HOURS', DEFAULT_WINDOW_HOURS),
    minRows: intVar(env, 'MIN_ROWS', 0) ?? DEFAULT_MIN_ROWS,
    psiThreshold: positiveNumber(env, 'PSI_THRESHOLD', DEFAULT_PSI_THRESHOLD),
    namespace,
  };
}

/** A manual run: `{ "windowHours"?: number, "end"?: ISO string }`. A scheduled event ends its window at its `time`. */
export interface DriftJobRequest {
  readonly windowHours?: number;
  readonly end?: string;
}

export interface DriftWindow {
  readonly start: Date;
  readonly end: Date;
}

/** The window a run covers: [end - hours, end). */
export function driftWindow(event: unknown, config: DriftJobConfig, now: Date): DriftWindow {
  const e = (typeof event === 'object' && event !== null ? event : {}) as Record<string, unknown>;
  if (e.source === 'aws.events' || e['detail-type'] === 'Scheduled Event') {
    // The scheduled time, not the start of this invocation: a retried run covers the same window.
    const at = typeof e.time === 'string' ? Date.parse(e.time) : NaN;
    const end = Number.isNaN(at) ? now : new Date(at);
    return { start: new Date(end.getTime() - config.windowHours * HOUR_MS), end };
  }
  let hours = config.windowHours;
  if (e.windowHours !== undefined) {
    if (typeof e.windowHours !== 'number' || !Number.isFinite(e.windowHours) || e.windowHours <= 0) {
      throw new Error(`windowHours must be a number over 0, got ${JSON.stringify(e.windowHours)}`);
    }
    hours = e.windowHours;
  }
  let end = now;
  if (e.end !== undefined) {
    const at = typeof e.end === 'string' ? Date.parse(e.end) : NaN;
    if (Number.isNaN(at)) throw new Error(`end must be an ISO 8601 time, got ${JSON.stringify(e.end)}`);
    end = new Date(at);
  }
  return { start: new Date(end.getTime() - hours * HOUR_MS), end };
}

/** The UTC days (yyyy-MM-dd) whose capture folders can hold records of the window. */
export function windowDays(window: DriftWindow): string[] {
  const days: string[] = [];
  const last = new Date(window.end.getTime() + ARRIVAL_SLACK_MS).toISOString().slice(0, 10);
  for (let t = Date.parse(window.start.toISOString().slice(0, 10)); ; t += 24 * HOUR_MS) {
    const day = new Date(t).toISOString().slice(0, 10);
    days.push(day);
    if (day >= last) return days;
  }
}

/** Where a version's report of a run goes: by day, named by the window's end (':' is awkward in keys). */
export function reportKey(config: DriftJobConfig, version: string, end: Date): string {
  const iso = end.toISOString();
  return `${config.reportPrefix}model=${config.modelName}/version=${version}/date=${iso.slice(0, 10)}/${iso.replace(/:/g, '-')}.json`;
}

/** What the job needs of a logger; Powertools' Logger is one. */
export interface DriftJobLogger {
  info(message: string, attributes: Record<string, unknown>): void;
  warn(message: string, attributes: Record<string, unknown>): void;
}

export interface DriftJobOptions {
  readonly s3: S3Client;
  readonly cloudwatch: CloudWatchClient;
  readonly config: DriftJobConfig;
  /** A scheduled EventBridge event, or a DriftJobRequest. @default - a run over the window ending now */
  readonly event?: unknown;
  /** @default () => new Date() */
  readonly now?: () => Date;
  /** @default - no logs */
  readonly logger?: DriftJobLogger;
}

/** One version's part of a run. */
export interface VersionSummary {
  readonly version: string;
  /** Capture records in the window. */
  readonly rows: number;
  readonly objects: number;
  /** Lines that were not this model and version's capture records (bad JSON, another shape, too long). */
  readonly badLines: number;
  /** Capture records outside the window. */
  readonly outsideWindow: number;
  /** Objects that could not be read to the end (e.g. a corrupt gzip); their earlier lines count. */
  readonly badObjects: number;
  readonly maxFeaturePsi?: number;
  readonly predictionPsi?: number;
  readonly drifted: readonly string[];
  readonly skipped?: string;
  /** The report's key in the capture bucket. */
  readonly report: string;
}

export interface DriftJobSummary {
  readonly model: string;
  readonly window: { readonly start: string; readonly end: string };
  /** Versions with captured rows in the window. */
  readonly versions: readonly VersionSummary[];
  readonly rows: number;
  /** Metrics published. */
  readonly metrics: number;
  /** Why no metrics were published. @default - they were */
  readonly metricsSkipped?: string;
}

/** The report as written to S3. */
export interface StoredDriftReport extends DriftReport {
  readonly generatedAt: string;
  readonly input: {
    readonly objects: number;
    readonly badLines: number;
    readonly outsideWindow: number;
    readonly badObjects: number;
  };
}

interface VersionState {
  readonly version: string;
  readonly accumulator?: DriftAccumulator;
  readonly baselineProblem?: string;
  rows: number;
  objects: number;
  badLines: number;
  outsideWindow: number;
  badObjects: number;
}

async function listAll(
  s3: S3Client,
  bucket: string,
  prefix: string,
  delimiter?: string,
): Promise<{ keys: { key: string; modified?: Date }[]; prefixes: string[] }> {
  const keys: { key: string; modified?: Date }[] = [];
  const prefixes: string[] = [];
  let ContinuationToken: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, Delimiter: delimiter, ContinuationToken }),
    );
    for (const o of page.Contents ?? []) if (o.Key) keys.push({ key: o.Key, modified: o.LastModified });
    for (const p of page.CommonPrefixes ?? []) if (p.Prefix) prefixes.push(p.Prefix);
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  return { keys, prefixes };
}

/** The version's baseline as an accumulator, or why there is none. */
async function loadBaseline(
  s3: S3Client,
  config: DriftJobConfig,
  version: string,
): Promise<{ accumulator?: DriftAccumulator; baselineProblem?: string }> {
  const key = `${config.modelName}/${version}/model.json`;
  const where = `s3://${config.modelBucket}/${key}`;
  let text: string;
  try {
    const res = await s3.send(new GetObjectCommand({ Bucket: config.modelBucket, Key: key }));
    text = (await res.Body?.transformToString('utf8')) ?? '';
  } catch (err) {
    // A missing or unreadable manifest is this version's problem (reported); other errors fail the run, to retry.
    const name = (err as Error).name;
    if (name === 'NoSuchKey') return { baselineProblem: `no manifest at ${where}` };
    if (name === 'AccessDenied') {
      return {
        baselineProblem: `cannot read ${where}: AccessDenied (without s3:ListBucket a missing object reads as AccessDenied)`,
      };
    }
    throw err;
  }
  let manifest: Partial<ModelManifest>;
  try {
    manifest = JSON.parse(text) as Partial<ModelManifest>;
  } catch (err) {
    return { baselineProblem: `${where} is not valid JSON: ${(err as Error).message}` };
  }
  if (!manifest.baseline) return { baselineProblem: `${where} has no baseline` };
  try {
    return { accumulator: new DriftAccumulator(manifest.baseline, { labels: manifest.labels }) };
  } catch (err) {
    return { baselineProblem: `${where}: ${(err as Error).message}` };
  }
}

/** Streams one capture object into the version's state. */
async function readObject(
  s3: S3Client,
  bucket: string,
  key: string,
  state: VersionState,
  config: DriftJobConfig,
  window: DriftWindow,
): Promise<void> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!res.Body) throw new Error(`s3://${bucket}/${key} has no body`);
  const start = window.start.getTime();
  const end = window.end.getTime();
  for await (const line of captureLines(res.Body as AsyncIterable<Uint8Array>)) {
    if (line === null) {
      state.badLines++;
      continue;
    }
    if (line.trim() === '') continue;
    let record: unknown;
    try {
      record = JSON.parse(line);
    } catch {
      state.badLines++;
      continue;
    }
    // Firehose partitions by the record's own model and version, so another one here is a corrupt object.
    if (!isCaptureRecord(record) || record.model !== config.modelName || record.version !== state.version) {
      state.badLines++;
      continue;
    }
    const at = Date.parse(record.time);
    if (Number.isNaN(at)) {
      state.badLines++;
      continue;
    }
    if (at < start || at >= end) {
      state.outsideWindow++;
      continue;
    }
    state.rows++;
    state.accumulator?.add(record);
  }
}

function datum(
  name: string,
  dims: Record<string, string>,
  value: number,
  unit: StandardUnit,
  at: Date,
): MetricDatum {
  return {
    MetricName: name,
    Dimensions: Object.entries(dims).map(([Name, Value]) => ({ Name, Value })),
    Value: value,
    Unit: unit,
    Timestamp: at,
  };
}

/** The metrics of a run: per version, and per model over its versions (the largest PSI; pooled class mix). */
export function driftMetrics(
  model: string,
  reports: readonly { readonly version: string; readonly rows: number; readonly report: DriftReport }[],
  at: Date,
): MetricDatum[] {
  const out: MetricDatum[] = [];
  const none = StandardUnit.None;
  const featureMax = new Map<string, number>();
  let maxFeature: number | undefined;
  let maxPrediction: number | undefined;
  const classRows = new Map<string, number>();
  let classTotal = 0;
  const higher = (a: number | undefined, b: number) => (a === undefined || b > a ? b : a);
  for (const { version, rows, report } of reports) {
    out.push(datum('CapturedRows', { model, version }, rows, StandardUnit.Count, at));
    if (report.skipped) continue;
    for (const f of report.features) {
      if (f.psi === undefined) continue;
      out.push(datum('FeaturePSI', { model, version, feature: f.name }, f.psi, none, at));
      featureMax.set(f.name, higher(featureMax.get(f.name), f.psi));
    }
    if (report.maxFeaturePsi !== undefined) {
      out.push(datum('MaxFeaturePSI', { model, version }, report.maxFeaturePsi, none, at));
      maxFeature = higher(maxFeature, report.maxFeaturePsi);
    }
    if (report.predictionPsi !== undefined) {
      out.push(datum('PredictionPSI', { model, version }, report.predictionPsi, none, at));
      maxPrediction = higher(maxPrediction, report.predictionPsi);
    }
    if (report.classShare) {
      // The share's column is the first categorical prediction with values, as DriftAccumulator picks it.
      const n = report.predictions.find((p) => p.kind === 'categorical' && p.count > 0)?.count ?? 0;
      classTotal += n;
      for (const [cls, percent] of Object.entries(report.classShare)) {
        classRows.set(cls, (classRows.get(cls) ?? 0) + (percent * n) / 100);
      }
    }
  }
  const total = reports.reduce((s, r) => s + r.rows, 0);
  out.push(datum('CapturedRows', { model }, total, StandardUnit.Count, at));
  for (const [feature, v] of featureMax) out.push(datum('FeaturePSI', { model, feature }, v, none, at));
  if (maxFeature !== undefined) out.push(datum('MaxFeaturePSI', { model }, maxFeature, none, at));
  if (maxPrediction !== undefined) out.push(datum('PredictionPSI', { model }, maxPrediction, none, at));
  for (const [cls, n] of classRows) {
    const percent = classTotal > 0 ? Number(((100 * n) / classTotal).toPrecision(6)) : 0;
    out.push(datum('ClassShare', { model, class: cls }, percent, StandardUnit.Percent, at));
  }
  return out;
}

/** Reads one version's captures of the window, or undefined when no object of the window's days is new enough. */
async function readVersion(
  o: DriftJobOptions,
  version: string,
  prefix: string,
  window: DriftWindow,
): Promise<VersionState | undefined> {
  const { s3, config } = o;
  const keys: string[] = [];
  for (const day of windowDays(window)) {
    const { keys: objects } = await listAll(s3, config.captureBucket, `${prefix}date=${day}/`);
    // An object written before the window began holds only records captured before it too.
    for (const obj of objects) if (!obj.modified || obj.modified >= window.start) keys.push(obj.key);
  }
  if (keys.length === 0) return undefined;
  const state: VersionState = {
    version,
    ...(await loadBaseline(s3, config, version)),
    rows: 0,
    objects: 0,
    badLines: 0,
    outsideWindow: 0,
    badObjects: 0,
  };
  if (state.baselineProblem) {
    o.logger?.warn('no baseline: rows are counted, drift is not', {
      version,
      problem: state.baselineProblem,
    });
  }
  for (const key of keys) {
    state.objects++;
    try {
      await readObject(s3, config.captureBucket, key, state, config, window);
    } catch (err) {
      state.badObjects++;
      o.logger?.warn('capture object could not be read to the end', { key, error: (err as Error).message });
    }
  }
  return state;
}

/** The version's drift, or, with no baseline, its rows and why there is no drift. */
function versionReport(
  state: VersionState,
  config: DriftJobConfig,
  window: DriftReport['window'],
): DriftReport {
  const meta = { model: config.modelName, version: state.version, window };
  if (state.accumulator) {
    return state.accumulator.report({ ...meta, threshold: config.psiThreshold, minRows: config.minRows });
  }
  return {
    ...meta,
    rows: state.rows,
    threshold: config.psiThreshold,
    features: [],
    predictions: [],
    drifted: [],
    skipped: state.baselineProblem,
  };
}

/** Writes the version's report and returns its summary. */
async function writeVersionReport(
  o: DriftJobOptions,
  state: VersionState,
  report: DriftReport,
  end: Date,
  now: Date,
): Promise<VersionSummary> {
  const key = reportKey(o.config, state.version, end);
  const input = {
    objects: state.objects,
    badLines: state.badLines,
    outsideWindow: state.outsideWindow,
    badObjects: state.badObjects,
  };
  const stored: StoredDriftReport = { ...report, generatedAt: now.toISOString(), input };
  await o.s3.send(
    new PutObjectCommand({
      Bucket: o.config.captureBucket,
      Key: key,
      Body: JSON.stringify(stored, null, 2),
      ContentType: 'application/json',
    }),
  );
  return {
    version: state.version,
    rows: state.rows,
    ...input,
    ...(report.maxFeaturePsi !== undefined ? { maxFeaturePsi: report.maxFeaturePsi } : {}),
    ...(report.predictionPsi !== undefined ? { predictionPsi: report.predictionPsi } : {}),
    drifted: report.drifted,
    ...(report.skipped ? { skipped: report.skipped } : {}),
    report: key,
  };
}

/** Runs the job once: read the window, report per version, publish the metrics. */
export async function runDriftJob(o: DriftJobOptions): Promise<DriftJobSummary> {
  const { config } = o;
  const now = (o.now ?? (() => new Date()))();
  const window = driftWindow(o.event, config, now);
  const windowText = { start: window.start.toISOString(), end: window.end.toISOString() };
  const modelPrefix = `${config.capturePrefix}model=${config.modelName}/`;
  const { prefixes } = await listAll(o.s3, config.captureBucket, modelPrefix, '/');
  const results: { version: string; rows: number; report: DriftReport; summary: VersionSummary }[] = [];
  for (const prefix of prefixes) {
    const match = /^version=(.+)\/$/.exec(prefix.slice(modelPrefix.length));
    if (!match) continue;
    const state = await readVersion(o, match[1] as string, prefix, window);
    if (!state) continue;
    if (state.rows === 0) {
      o.logger?.info('no captured rows in the window', {
        version: state.version,
        objects: state.objects,
        badLines: state.badLines,
      });
      continue;
    }
    const report = versionReport(state, config, windowText);
    const summary = await writeVersionReport(o, state, report, window.end, now);
    o.logger?.info('version drift', { ...summary });
    results.push({ version: state.version, rows: state.rows, report, summary });
  }
  const age = now.getTime() - window.end.getTime();
  const metricsSkipped =
    age > METRIC_MAX_AGE_MS || -age > METRIC_MAX_AHEAD_MS
      ? `the window ends at ${windowText.end}, outside the two weeks back to two hours ahead that CloudWatch takes data points for`
      : undefined;
  let published = 0;
  if (metricsSkipped) {
    o.logger?.warn('metrics not published', { reason: metricsSkipped });
  } else {
    const data = driftMetrics(config.modelName, results, window.end);
    for (let i = 0; i < data.length; i += MAX_METRICS_PER_CALL) {
      const MetricData = data.slice(i, i + MAX_METRICS_PER_CALL);
      await o.cloudwatch.send(new PutMetricDataCommand({ Namespace: config.namespace, MetricData }));
      published += MetricData.length;
    }
  }
  return {
    model: config.modelName,
    window: windowText,
    versions: results.map((r) => r.summary),
    rows: results.reduce((s, r) => s + r.rows, 0),
    metrics: published,
    ...(metricsSkipped ? { metricsSkipped } : {}),
  };
}
