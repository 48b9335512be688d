/**
 * The S3 side of batch jobs: job names and keys, input lines streamed from GetObject, outputs streamed
 * through multipart uploads, and the job summary, for a job run in one Lambda or by a Distributed Map.
 * Model code is injected by the handlers, so the summary Lambda's bundle stays free of onnxruntime.
 */
import * as path from 'node:path';
import * as readline from 'node:readline';
import type { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  UploadPartCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import type { RowFormat } from './rows';
import type { JobCounts, JobSummary, MapItem } from './batch-job';
import { InferenceError } from './errors';

export const INPUT_PREFIX = 'input/';
export const OUTPUT_PREFIX = 'output/';
/** Objects above this run as a Distributed Map (LARGE_JOB_BYTES overrides it). */
export const DEFAULT_LARGE_JOB_BYTES = 50 * 1024 * 1024;
/** S3's smallest multipart part (but the last); 8 MiB keeps a 10,000-part upload good for 78 GiB. */
export const PART_BYTES = 8 * 1024 * 1024;

const FORMATS: Readonly<Record<string, RowFormat>> = {
  '.csv': 'csv',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  // One JSON document per line, as the Distributed Map's JSONL reader takes it.
  '.json': 'jsonl',
};
export const INPUT_EXTENSIONS = Object.keys(FORMATS);

const JOB_NAME = /^[A-Za-z0-9][A-Za-z0-9._=-]{0,127}$/;

/** A job request that can never succeed as it is (retrying it would fail the same way). */
export class JobRequestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'JobRequestError';
  }
}

/** The row format an input key's extension says, or undefined for any other extension. */
export function formatOfKey(key: string): RowFormat | undefined {
  return FORMATS[path.posix.extname(key).toLowerCase()];
}

/** A job name given by a caller: it becomes a key prefix, so no '/', no '..', nothing S3 would escape. */
export function checkJobName(job: unknown): string {
  if (typeof job !== 'string' || !JOB_NAME.test(job) || job.includes('..')) {
    throw new JobRequestError(
      `job ${JSON.stringify(job)} must be 1 to 128 letters, digits, '.', '_', '=' or '-', start with a letter or digit, and hold no '..'`,
    );
  }
  return job;
}

/** `20261122T021500Z` (with `.123` milliseconds when asked): a time that sorts, in a key or a name. */
function compactTime(at: Date, millis = false): string {
  const iso = at.toISOString().replace(/[-:]/g, '');
  return millis ? iso.replace('.', '') : iso.replace(/\.\d{3}/, '');
}

/**
 * A job's name from its input key: the file name without its extension, with characters outside
 * [A-Za-z0-9._=-] made '-'. A scheduled run adds its time, so each run keeps its own outputs.
 */
export function jobFromKey(key: string, scheduledAt?: string): string {
  const stem = path.posix.basename(key, path.posix.extname(key));
  let job = stem.replace(/[^A-Za-z0-9._=-]/g, '-').replace(/\.{2,}/g, '.');
  if (!/^[A-Za-z0-9]/.test(job)) job = `job-${job}`;
  let suffix = '';
  if (scheduledAt !== undefined) {
    const at = new Date(scheduledAt);
    if (Number.isNaN(at.getTime()))
      throw new JobRequestError(`scheduledAt ${JSON.stringify(scheduledAt)} is not a time`);
    suffix = `-${compactTime(at)}`;
  }
  return checkJobName(job.slice(0, 128 - suffix.length) + suffix);
}

export interface JobKeys {
  /** `output/<job>/` */
  readonly prefix: string;
  readonly predictions: string;
  readonly errors: string;
  readonly summary: string;
  /** Where a Distributed Map's batches write their parts. */
  readonly parts: string;
  /** Where the Distributed Map's ResultWriter writes (no trailing '/': it adds one). */
  readonly mapResults: string;
}

export function jobKeys(job: string): JobKeys {
  const prefix = `${OUTPUT_PREFIX}${checkJobName(job)}/`;
  return {
    prefix,
    predictions: `${prefix}predictions.jsonl`,
    errors: `${prefix}errors.jsonl`,
    summary: `${prefix}summary.json`,
    parts: `${prefix}parts/`,
    mapResults: `${prefix}map`,
  };
}

/** A batch's part keys: named by its first item's index, zero-padded so that name order is input order. */
export function partKeys(job: string, firstIndex: number): { predictions: string; errors: string } {
  const n = String(firstIndex).padStart(12, '0');
  const parts = jobKeys(job).parts;
  return { predictions: `${parts}predictions-${n}.jsonl`, errors: `${parts}errors-${n}.jsonl` };
}

/** A Step Functions execution name: the job (letters, digits, '-', '_') and the time, at most 80 characters. */
export function executionName(job: string, now: Date): string {
  const time = compactTime(now, true);
  const base = job.replace(/[^A-Za-z0-9_-]/g, '-').slice(0, 80 - 1 - time.length);
  return `${base}-${time}`;
}

/** S3 event notification keys are form-encoded: '+' for a space, %XX for the rest. */
export function decodeEventKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

/** The lines of a stream, without their line ends; only one chunk is in memory at a time. */
export async function* streamLines(body: Readable): AsyncGenerator<string> {
  const lines = readline.createInterface({ input: body, crlfDelay: Infinity });
  try {
    for await (const line of lines) yield line;
  } finally {
    lines.close();
  }
}

/** An object's lines, read as a stream. */
export async function* objectLines(s3: S3Client, bucket: string, key: string): AsyncGenerator<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!res.Body) throw new Error(`s3://${bucket}/${key} has no body`);
  yield* streamLines(res.Body as Readable);
}

/**
 * Writes one object as text arrives, holding at most one part in memory: a plain PutObject when the
 * whole text fits in one part, else a multipart upload (aborted on failure, so no parts are left billed).
 */
export class S3ObjectWriter {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private uploadId?: string;
  private readonly parts: { ETag: string | undefined; PartNumber: number }[] = [];
  /** Bytes written so far. */
  public bytes = 0;

  constructor(
    private readonly s3: S3Client,
    readonly bucket: string,
    readonly key: string,
    private readonly options: { partBytes?: number; contentType?: string } = {},
  ) {}

  private get partBytes(): number {
    return this.options.partBytes ?? PART_BYTES;
  }

  async write(text: string): Promise<void> {
    if (text === '') return;
    const chunk = Buffer.from(text, 'utf8');
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    this.bytes += chunk.length;
    if (this.buffered >= this.partBytes) await this.flushPart();
  }

  private async flushPart(): Promise<void> {
    const body = Buffer.concat(this.chunks);
    this.chunks = [];
    this.buffered = 0;
    if (this.uploadId === undefined) {
      const created = await this.s3.send(
        new CreateMultipartUploadCommand({
          Bucket: this.bucket,
          Key: this.key,
          ContentType: this.options.contentType,
        }),
      );
      if (!created.UploadId) throw new Error(`S3 gave no upload id for s3://${this.bucket}/${this.key}`);
      this.uploadId = created.UploadId;
    }
    const PartNumber = this.parts.length + 1;
    const res = await this.s3.send(
      new UploadPartCommand({
        Bucket: this.bucket,
        Key: this.key,
        UploadId: this.uploadId,
        PartNumber,
        Body: body,
      }),
    );
    this.parts.push({ ETag: res.ETag, PartNumber });
  }

  /** Finishes the object; an empty one is still written, so every job has its files. */
  async close(): Promise<void> {
    if (this.uploadId === undefined) {
      await this.s3.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: this.key,
          Body: Buffer.concat(this.chunks),
          ContentType: this.options.contentType,
        }),
      );
      this.chunks = [];
      this.buffered = 0;
      return;
    }
    if (this.buffered > 0) await this.flushPart();
    await this.s3.send(
      new CompleteMultipartUploadCommand({
        Bucket: this.bucket,
        Key: this.key,
        UploadId: this.uploadId,
        MultipartUpload: { Parts: this.parts },
      }),
    );
  }

  /** Drops what was written: the multipart upload, if one was started. */
  async abort(): Promise<void> {
    this.chunks = [];
    this.buffered = 0;
    if (this.uploadId === undefined) return;
    const UploadId = this.uploadId;
    this.uploadId = undefined;
    await this.s3.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.key, UploadId }));
  }
}

export type JobStatus = 'RUNNING' | 'SUCCEEDED' | 'FAILED';

/** `output/<job>/summary.json`. */
export interface JobReport extends Partial<Omit<JobSummary, keyof JobCounts>>, JobCounts {
  readonly job: string;
  /** FAILED: the job could not run (or the Distributed Map failed); bad rows alone do not fail it. */
  readonly status: JobStatus;
  /** `lambda`: one function streamed the object; `distributed-map`: Step Functions ran it in batches. */
  readonly mode: 'lambda' | 'distributed-map';
  /** `s3://<bucket>/<key>` of the input object. */
  readonly input: string;
  /** Keys in the job bucket. */
  readonly outputs: {
    readonly summary: string;
    readonly predictions?: string;
    readonly errors?: string;
    /** Distributed Map: predictions-<index>.jsonl and errors-<index>.jsonl per batch; name order is input order. */
    readonly parts?: string;
    /** Distributed Map: the ResultWriter's manifest. */
    readonly mapResults?: string;
  };
  /** Distributed Map: the Step Functions execution. */
  readonly executionArn?: string;
  /** Distributed Map: batches that failed (after retries) or never ran, and their rows. */
  readonly failedBatches?: number;
  readonly unprocessedRows?: number;
  /** Why the job failed, or the first failed batches' errors. */
  readonly error?: string;
  readonly batchErrors?: readonly { readonly firstIndex?: number; readonly error: string }[];
}

async function putJson(s3: S3Client, bucket: string, key: string, value: unknown): Promise<void> {
  await s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: key,
      Body: `${JSON.stringify(value, null, 2)}\n`,
      ContentType: 'application/json',
    }),
  );
}

/** What runs the rows: the handler's closure over `runBatchJob` and its model. */
export type RunRows = (o: {
  readonly format: RowFormat;
  readonly lines: AsyncIterable<string>;
  readonly writePredictions: (jsonl: string) => Promise<void>;
  readonly writeErrors: (jsonl: string) => Promise<void>;
}) => Promise<JobSummary>;

export interface ObjectJobOptions {
  readonly s3: S3Client;
  readonly bucket: string;
  readonly key: string;
  readonly job: string;
  readonly run: RunRows;
  /** @default PART_BYTES */
  readonly partBytes?: number;
  /** @default () => new Date() */
  readonly now?: () => Date;
}

const zeroCounts: JobCounts = { rows: 0, predicted: 0, failed: 0 };

/**
 * A job in this process: the object's lines streamed through `run`, predictions and errors streamed to
 * their files, then summary.json. A job that cannot run on its input (unknown extension, a header the model
 * cannot use) gets a FAILED summary and returns; an S3 or runtime fault throws, after a FAILED summary,
 * so that Lambda retries it.
 */
export async function runObjectJob(o: ObjectJobOptions): Promise<JobReport> {
  const now = o.now ?? (() => new Date());
  const keys = jobKeys(o.job);
  const started = now();
  const base = {
    job: o.job,
    mode: 'lambda' as const,
    input: `s3://${o.bucket}/${o.key}`,
    outputs: { summary: keys.summary, predictions: keys.predictions, errors: keys.errors },
  };
  const failedReport = (error: string, format?: RowFormat): JobReport => {
    const finished = now();
    return {
      ...base,
      ...zeroCounts,
      status: 'FAILED',
      format,
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      durationMs: finished.getTime() - started.getTime(),
      outputs: { summary: keys.summary },
      error,
    };
  };
  const format = formatOfKey(o.key);
  if (!format) {
    const report = failedReport(
      `cannot tell the format of ${o.key}: name it ${INPUT_EXTENSIONS.join(', ')} (CSV or JSON Lines)`,
    );
    await putJson(o.s3, o.bucket, keys.summary, report);
    return report;
  }
  const options = { partBytes: o.partBytes, contentType: 'application/x-ndjson' };
  const predictions = new S3ObjectWriter(o.s3, o.bucket, keys.predictions, options);
  const errors = new S3ObjectWriter(o.s3, o.bucket, keys.errors, options);
  let summary: JobSummary;
  try {
    summary = await o.run({
      format,
      lines: objectLines(o.s3, o.bucket, o.key),
      writePredictions: (text) => predictions.write(text),
      writeErrors: (text) => errors.write(text),
    });
    await predictions.close();
    await errors.close();
  } catch (err) {
    await Promise.allSettled([predictions.abort(), errors.abort()]);
    const report = failedReport((err as Error).message, format);
    await putJson(o.s3, o.bucket, keys.summary, report);
    // The input's fault: another try reads the same bytes. Anything else may pass on a retry.
    if (err instanceof InferenceError || err instanceof JobRequestError) return report;
    throw err;
  }
  const report: JobReport = { ...base, ...summary, status: 'SUCCEEDED' };
  await putJson(o.s3, o.bucket, keys.summary, report);
  return report;
}

/** The Distributed Map execution's input, as the state machine reads it. */
export interface MapJobInput {
  readonly bucket: string;
  readonly key: string;
  readonly job: string;
  readonly format: RowFormat;
  /** The ResultWriter's prefix, `output/<job>/map`. */
  readonly resultPrefix: string;
}

export function mapJobInput(bucket: string, key: string, job: string): MapJobInput {
  const format = formatOfKey(key);
  if (!format) throw new JobRequestError(`cannot tell the format of ${key}`);
  return { bucket, key, job, format, resultPrefix: jobKeys(job).mapResults };
}

/** A RUNNING summary for a job handed to the state machine: where to look while it runs. */
export function runningReport(input: MapJobInput, executionArn: string, startedAt: Date): JobReport {
  const keys = jobKeys(input.job);
  return {
    job: input.job,
    status: 'RUNNING',
    mode: 'distributed-map',
    input: `s3://${input.bucket}/${input.key}`,
    format: input.format,
    ...zeroCounts,
    startedAt: startedAt.toISOString(),
    executionArn,
    outputs: { summary: keys.summary, parts: keys.parts },
  };
}

export async function writeReport(s3: S3Client, bucket: string, report: JobReport): Promise<void> {
  await putJson(s3, bucket, report.outputs.summary, report);
}

/** A job that could not start, e.g. a large CSV with no header for the Distributed Map's reader. */
export function refusedReport(
  input: { bucket: string; key: string; job: string },
  mode: JobReport['mode'],
  error: string,
  at: Date,
): JobReport {
  return {
    job: input.job,
    status: 'FAILED',
    mode,
    input: `s3://${input.bucket}/${input.key}`,
    format: formatOfKey(input.key),
    ...zeroCounts,
    startedAt: at.toISOString(),
    finishedAt: at.toISOString(),
    durationMs: 0,
    outputs: { summary: jobKeys(input.job).summary },
    error,
  };
}

/** The first line of an object, from a ranged GET: enough to see a CSV header. */
export async function firstLine(
  s3: S3Client,
  bucket: string,
  key: string,
  maxBytes = 64 * 1024,
): Promise<string> {
  const res = await s3.send(
    new GetObjectCommand({ Bucket: bucket, Key: key, Range: `bytes=0-${maxBytes - 1}` }),
  );
  const head = (await res.Body?.transformToString('utf8')) ?? '';
  return head.split(/\r?\n/, 1)[0] ?? '';
}

/** An object's size, for the choice between this Lambda and the Distributed Map. */
export async function objectSize(s3: S3Client, bucket: string, key: string): Promise<number> {
  const head = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
  return head.ContentLength ?? 0;
}

/** The Distributed Map's ItemBatcher hands each child execution this: the selected items and BatchInput. */
export interface ItemsEvent {
  readonly Items: readonly MapItem[];
  readonly BatchInput: { readonly bucket: string; readonly job: string; readonly format: RowFormat };
}

/** What a batch returns to the Map (kept small: the Map's result must stay under 256 KB per batch). */
export interface ItemsResult extends JobCounts {
  readonly firstIndex: number;
  readonly items: number;
  readonly predictions: string;
  readonly errors?: string;
  readonly model: { readonly name: string; readonly version: string };
}

export type PredictItems = (o: {
  readonly format: RowFormat;
  readonly items: readonly MapItem[];
}) => Promise<{ predictions: string; errors: string; counts: JobCounts }>;

/** Checks the shape Step Functions sends; anything else is a wiring fault, not a row's. */
export function parseItemsEvent(event: unknown): ItemsEvent {
  const e = event as Partial<ItemsEvent> | null;
  if (typeof e !== 'object' || e === null || !Array.isArray(e.Items) || e.Items.length === 0) {
    throw new JobRequestError(
      'the event must be an ItemBatcher batch: {"Items": [...], "BatchInput": {...}}',
    );
  }
  for (const item of e.Items as unknown[]) {
    const i = item as Partial<MapItem> | null;
    if (typeof i !== 'object' || i === null || !Number.isSafeInteger(i.index) || !('value' in i)) {
      throw new JobRequestError(
        'each item must be {"index": $$.Map.Item.Index, "value": $$.Map.Item.Value} (the ItemSelector)',
      );
    }
  }
  const b = e.BatchInput;
  if (typeof b?.bucket !== 'string' || b.bucket === '' || (b.format !== 'csv' && b.format !== 'jsonl')) {
    throw new JobRequestError('BatchInput must hold bucket, job and format (csv or jsonl)');
  }
  checkJobName(b.job);
  return e as ItemsEvent;
}

/** One batch: predicted, its parts written (errors only when there are any), its counts returned. */
export async function runItemsBatch(o: {
  readonly s3: S3Client;
  readonly event: unknown;
  readonly predict: PredictItems;
  readonly model: { readonly name: string; readonly version: string };
}): Promise<ItemsResult> {
  const event = parseItemsEvent(o.event);
  const { bucket, job, format } = event.BatchInput;
  const firstIndex = Math.min(...event.Items.map((i) => i.index));
  const out = await o.predict({ format, items: event.Items });
  const keys = partKeys(job, firstIndex);
  await o.s3.send(
    new PutObjectCommand({
      Bucket: bucket,
      Key: keys.predictions,
      Body: out.predictions,
      ContentType: 'application/x-ndjson',
    }),
  );
  if (out.errors !== '') {
    await o.s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: keys.errors,
        Body: out.errors,
        ContentType: 'application/x-ndjson',
      }),
    );
  }
  return {
    firstIndex,
    items: event.Items.length,
    ...out.counts,
    predictions: keys.predictions,
    errors: out.errors !== '' ? keys.errors : undefined,
    model: o.model,
  };
}

/** What the state machine passes the summary step. */
export interface SummaryEvent {
  readonly bucket: string;
  readonly key: string;
  readonly job: string;
  readonly format?: RowFormat;
  /** `$$.Execution.StartTime` */
  readonly startedAt: string;
  readonly executionArn?: string;
  /** The Map's `ResultWriterDetails.Key`, when the Map finished. */
  readonly manifestKey?: string;
  /** The Map's error, on the Catch path. */
  readonly error?: { readonly Error?: string; readonly Cause?: string };
}

/** `manifest.json` of a Map Run's ResultWriter. */
export interface MapRunManifest {
  readonly DestinationBucket?: string;
  readonly MapRunArn?: string;
  readonly ResultFiles?: Partial<
    Record<'SUCCEEDED' | 'FAILED' | 'PENDING', readonly { readonly Key: string; readonly Size?: number }[]>
  >;
}

/** One child execution in a ResultWriter result file. Input and Output are JSON text. */
export interface MapRunResult {
  readonly Input?: string;
  readonly Output?: string;
  readonly Status?: string;
  readonly Error?: string;
  readonly Cause?: string;
}

/**
 * The elements of a JSON array, parsed one at a time as the text streams in: a Map Run's result file lists
 * every child execution with its whole input, so it may be far bigger than the memory the summary has.
 */
export async function* jsonArrayElements(
  chunks: AsyncIterable<Buffer | string>,
  where: string,
): AsyncGenerator<unknown> {
  const decoder = new StringDecoder('utf8');
  let depth = 0;
  let inString = false;
  let escaped = false;
  let opened = false;
  let pending = '';
  const element = (text: string): unknown => {
    try {
      return JSON.parse(text) as unknown;
    } catch (err) {
      throw new Error(`${where}: an element is not valid JSON: ${(err as Error).message}`);
    }
  };
  for await (const chunk of chunks) {
    const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let from = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (inString) {
        if (escaped) escaped = false;
        else if (c === '\\') escaped = true;
        else if (c === '"') inString = false;
        continue;
      }
      if (!opened) {
        if (c === '[') {
          opened = true;
          depth = 1;
          from = i + 1;
        } else if (c !== undefined && !/\s/.test(c)) {
          throw new Error(`${where} is not a JSON array`);
        }
        continue;
      }
      if (c === '"') inString = true;
      else if (c === '[' || c === '{') depth++;
      else if ((c === ',' && depth === 1) || ((c === ']' || c === '}') && --depth === 0)) {
        const el = (pending + text.slice(from, i)).trim();
        pending = '';
        from = i + 1;
        if (el !== '') yield element(el);
        if (depth === 0) return;
      }
    }
    if (opened) pending += text.slice(from);
  }
  throw new Error(`${where} ends before its JSON array does`);
}

async function readText(s3: S3Client, bucket: string, key: string): Promise<string> {
  const res = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  if (!res.Body) throw new Error(`s3://${bucket}/${key} has no body`);
  return res.Body.transformToString('utf8');
}

function parseJson<T>(text: string, where: string): T {
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new Error(`${where} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The newest manifest.json under the job's ResultWriter prefix: the Catch path is not told its key. */
export async function findManifest(s3: S3Client, bucket: string, job: string): Promise<string | undefined> {
  const prefix = `${jobKeys(job).mapResults}/`;
  let best: { key: string; at: number } | undefined;
  let ContinuationToken: string | undefined;
  do {
    const page = await s3.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken }),
    );
    for (const obj of page.Contents ?? []) {
      if (!obj.Key?.endsWith('/manifest.json')) continue;
      const at = obj.LastModified?.getTime() ?? 0;
      if (!best || at > best.at) best = { key: obj.Key, at };
    }
    ContinuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (ContinuationToken);
  return best?.key;
}

const MAX_BATCH_ERRORS = 10;

function batchItems(result: MapRunResult): { first?: number; count: number } {
  if (!result.Input) return { count: 0 };
  const input = parseJson<Partial<ItemsEvent>>(result.Input, 'a child execution Input');
  const items = (Array.isArray(input.Items) ? input.Items : []) as readonly Partial<MapItem>[];
  const indexes = items.map((i) => i.index).filter((i): i is number => Number.isSafeInteger(i));
  return { first: indexes.length > 0 ? Math.min(...indexes) : undefined, count: items.length };
}

/**
 * Adds up a Map Run from its ResultWriter files (read one at a time) and writes summary.json: the batches'
 * counts, the failed and never-run batches with their rows, and the time since the execution started.
 */
export async function summarizeMapRun(o: {
  readonly s3: S3Client;
  readonly event: SummaryEvent;
  readonly now?: () => Date;
}): Promise<JobReport> {
  const e = o.event;
  const job = checkJobName(e.job);
  const keys = jobKeys(job);
  const manifestKey = e.manifestKey ?? (await findManifest(o.s3, e.bucket, job));
  let rows = 0;
  let predicted = 0;
  let failed = 0;
  let failedBatches = 0;
  let unprocessedRows = 0;
  let model: { name: string; version: string } | undefined;
  const batchErrors: { firstIndex?: number; error: string }[] = [];
  if (manifestKey) {
    const manifest = parseJson<MapRunManifest>(await readText(o.s3, e.bucket, manifestKey), manifestKey);
    const files = manifest.ResultFiles ?? {};
    for (const status of ['SUCCEEDED', 'FAILED', 'PENDING'] as const) {
      for (const file of files[status] ?? []) {
        const res = await o.s3.send(new GetObjectCommand({ Bucket: e.bucket, Key: file.Key }));
        if (!res.Body) throw new Error(`s3://${e.bucket}/${file.Key} has no body`);
        for await (const element of jsonArrayElements(res.Body as Readable, file.Key)) {
          const r = element as MapRunResult;
          if (status === 'SUCCEEDED' && r.Output) {
            const out = parseJson<Partial<ItemsResult>>(r.Output, `${file.Key}: a child execution Output`);
            rows += out.rows ?? 0;
            predicted += out.predicted ?? 0;
            failed += out.failed ?? 0;
            model ??= out.model;
            continue;
          }
          const { first, count } = batchItems(r);
          failedBatches += 1;
          unprocessedRows += count;
          rows += count;
          if (batchErrors.length < MAX_BATCH_ERRORS) {
            const why =
              status === 'PENDING'
                ? 'never ran: the Map Run stopped first'
                : [r.Error, r.Cause].filter((s) => s).join(': ') || r.Status || 'failed';
            batchErrors.push({ firstIndex: first, error: why });
          }
        }
      }
    }
  }
  const finished = (o.now ?? (() => new Date()))();
  const startedAt = new Date(e.startedAt);
  const mapError = e.error ? [e.error.Error, e.error.Cause].filter((s) => s).join(': ') : undefined;
  const error =
    mapError ?? (manifestKey ? undefined : 'the Distributed Map wrote no results (no manifest.json)');
  const report: JobReport = {
    job,
    status: error === undefined ? 'SUCCEEDED' : 'FAILED',
    mode: 'distributed-map',
    input: `s3://${e.bucket}/${e.key}`,
    format: e.format,
    rows,
    predicted,
    failed,
    failedBatches,
    unprocessedRows,
    model,
    startedAt: Number.isNaN(startedAt.getTime()) ? e.startedAt : startedAt.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: Number.isNaN(startedAt.getTime()) ? undefined : finished.getTime() - startedAt.getTime(),
    executionArn: e.executionArn,
    outputs: { summary: keys.summary, parts: keys.parts, mapResults: manifestKey },
    error,
    batchErrors: batchErrors.length > 0 ? batchErrors : undefined,
  };
  await putJson(o.s3, e.bucket, keys.summary, report);
  return report;
}
