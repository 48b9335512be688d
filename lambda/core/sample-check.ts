/**
 * The manifest's `sample` as a release check: send its request to a running model and compare the answer
 * with its expected response. The CodeDeploy pre-traffic hook and `mdk smoke` both use it, so a release is
 * judged the same way before traffic moves and after it has.
 */
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import type { S3Client } from '@aws-sdk/client-s3';
import { MANIFEST_FILE, parseManifestJson, parseS3Uri, readS3Text, s3Sdk } from './model-store';
import type { InferRequest, InferResponse, ModelManifest } from './types';

export interface Tolerance {
  /** Largest difference allowed whatever the size of the expected value. */
  readonly absolute: number;
  /** Largest difference allowed as a fraction of the expected value's magnitude. */
  readonly relative: number;
}

/**
 * A float matches when |actual - expected| <= absolute + relative * |expected|. 1e-4 absorbs what another
 * CPU, thread count or onnxruntime build changes in FP32 results (~1e-6), and still catches other weights.
 */
export const DEFAULT_TOLERANCE: Tolerance = { absolute: 1e-4, relative: 1e-4 };

/** Differences listed before the rest are only counted: one wrong model gives one per element. */
export const DEFAULT_MAX_DIFFERENCES = 20;

export interface CompareOptions {
  /** @default DEFAULT_TOLERANCE */
  readonly tolerance?: Partial<Tolerance>;
  /** @default DEFAULT_MAX_DIFFERENCES */
  readonly maxDifferences?: number;
}

const FLOAT_TYPES = new Set(['FP16', 'FP32', 'FP64']);

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function flatten(data: unknown): unknown[] {
  if (!Array.isArray(data)) return [data];
  return data.flat(Infinity) as unknown[];
}

/** Short enough for a log line: long strings are cut. */
function show(v: unknown): string {
  if (typeof v === 'number') return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(7)));
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function floatsMatch(expected: unknown, actual: unknown, tol: Tolerance): boolean {
  if (typeof expected !== 'number' || typeof actual !== 'number') return false;
  if (Number.isNaN(expected)) return Number.isNaN(actual);
  if (!Number.isFinite(expected)) return expected === actual;
  return Math.abs(actual - expected) <= tol.absolute + tol.relative * Math.abs(expected);
}

/** Collects differences, keeping the first `max` and counting the rest. */
class Differences {
  readonly items: string[] = [];
  private extra = 0;
  constructor(private readonly max: number) {}
  add(text: string): void {
    if (this.items.length < this.max) this.items.push(text);
    else this.extra++;
  }
  list(): string[] {
    return this.extra > 0 ? [...this.items, `... and ${this.extra} more differences`] : [...this.items];
  }
}

function compareOutput(
  expected: InferResponse['outputs'][number],
  actual: Record<string, unknown>,
  tol: Tolerance,
  diffs: Differences,
): void {
  const name = expected.name;
  if (actual.datatype !== expected.datatype) {
    diffs.add(`output '${name}': datatype expected ${expected.datatype}, got ${show(actual.datatype)}`);
    return;
  }
  if (JSON.stringify(actual.shape) !== JSON.stringify(expected.shape)) {
    diffs.add(`output '${name}': shape expected [${expected.shape.join(', ')}], got ${show(actual.shape)}`);
    return;
  }
  if (actual.data === undefined) {
    diffs.add(`output '${name}': the response has no data for it (binary outputs cannot be compared)`);
    return;
  }
  const want = flatten(expected.data);
  const got = flatten(actual.data);
  if (want.length !== got.length) {
    diffs.add(`output '${name}': expected ${want.length} values, got ${got.length}`);
    return;
  }
  const isFloat = FLOAT_TYPES.has(expected.datatype);
  for (let i = 0; i < want.length; i++) {
    const e = want[i];
    const a = got[i];
    const same = isFloat ? floatsMatch(e, a, tol) : e === a;
    if (!same) diffs.add(`output '${name}'[${i}]: expected ${show(e)}, got ${show(a)}`);
  }
}

/**
 * Every difference between an actual V2 infer response and the expected one, in words a person can act on,
 * e.g. `output 'probabilities'[3]: expected 0.9706579, got 0.1203`. Empty when they match: same model name
 * and version, the same outputs with the same datatypes and shapes, integers, booleans and strings exactly
 * equal, floats within the tolerance.
 */
export function compareInferResponse(
  expected: InferResponse,
  actual: unknown,
  options: CompareOptions = {},
): string[] {
  const tol: Tolerance = { ...DEFAULT_TOLERANCE, ...options.tolerance };
  const diffs = new Differences(options.maxDifferences ?? DEFAULT_MAX_DIFFERENCES);
  if (!isRecord(actual) || !Array.isArray(actual.outputs)) {
    diffs.add(`the response is not a V2 infer response (no "outputs" array): ${show(actual)}`);
    return diffs.list();
  }
  if (actual.model_name !== expected.model_name) {
    diffs.add(`model_name: expected ${show(expected.model_name)}, got ${show(actual.model_name)}`);
  }
  if (expected.model_version !== undefined && actual.model_version !== expected.model_version) {
    diffs.add(
      `model_version: expected ${show(expected.model_version)}, got ${show(actual.model_version)} (is the version under test the one answering?)`,
    );
  }
  const byName = new Map<string, Record<string, unknown>>();
  for (const o of actual.outputs as unknown[]) {
    if (isRecord(o) && typeof o.name === 'string') byName.set(o.name, o);
  }
  for (const out of expected.outputs) {
    const got = byName.get(out.name);
    if (!got) {
      diffs.add(`output '${out.name}' is missing from the response`);
      continue;
    }
    compareOutput(out, got, tol, diffs);
  }
  const expectedNames = new Set(expected.outputs.map((o) => o.name));
  for (const name of byName.keys()) {
    if (!expectedNames.has(name)) diffs.add(`output '${name}' is in the response but not in the sample`);
  }
  return diffs.list();
}

/** What an endpoint answered: the HTTP status and the body (text, or JSON already parsed). */
export interface InvokeResult {
  readonly status: number;
  readonly body: unknown;
}

/** Sends a V2 infer request to the model under test, however it is reached (Lambda Invoke, HTTP). */
export type Invoke = (request: InferRequest) => Promise<InvokeResult>;

export interface SampleCheckResult {
  readonly passed: boolean;
  /** The model the manifest names, for messages. */
  readonly model: string;
  /** The HTTP status the endpoint answered, when it was reached. */
  readonly status?: number;
  /** Why it failed; empty when it passed. */
  readonly differences: readonly string[];
}

/** The manifest's sample, or why it cannot be used. */
export function sampleOf(
  manifest: ModelManifest,
): { request: InferRequest; response: InferResponse } | { error: string } {
  const sample = manifest.sample as unknown;
  const where = `the manifest of ${manifest.name} ${manifest.version}`;
  if (sample === undefined) {
    return {
      error: `${where} has no "sample": add one ({"request": <V2 infer request>, "response": <its expected response>}) to model.json`,
    };
  }
  if (!isRecord(sample) || !isRecord(sample.request) || !Array.isArray(sample.request.inputs)) {
    return { error: `${where}: "sample.request" must be a V2 infer request with an "inputs" array` };
  }
  if (!isRecord(sample.response) || !Array.isArray(sample.response.outputs)) {
    return { error: `${where}: "sample.response" must be a V2 infer response with an "outputs" array` };
  }
  return {
    request: sample.request as unknown as InferRequest,
    response: sample.response as unknown as InferResponse,
  };
}

function parseBody(body: unknown): { json: unknown } | { error: string } {
  if (typeof body !== 'string') return { json: body };
  try {
    return { json: JSON.parse(body) as unknown };
  } catch {
    return { error: `the response body is not JSON: ${show(body)}` };
  }
}

/**
 * Sends the manifest's sample request through `invoke` and checks the answer. A status other than 200 fails
 * with the body's `error`; so does a manifest without a sample, and an `invoke` that throws (unreachable).
 */
export async function runSampleCheck(
  manifest: ModelManifest,
  invoke: Invoke,
  options: CompareOptions = {},
): Promise<SampleCheckResult> {
  const model = manifest.name;
  const sample = sampleOf(manifest);
  if ('error' in sample) return { passed: false, model, differences: [sample.error] };
  let res: InvokeResult;
  try {
    res = await invoke(sample.request);
  } catch (err) {
    return { passed: false, model, differences: [`the request failed: ${(err as Error).message}`] };
  }
  const parsed = parseBody(res.body);
  if (res.status !== 200) {
    const error = 'json' in parsed && isRecord(parsed.json) ? parsed.json.error : undefined;
    const why = typeof error === 'string' ? error : show(res.body);
    return { passed: false, model, status: res.status, differences: [`HTTP ${res.status}: ${why}`] };
  }
  if ('error' in parsed) return { passed: false, model, status: res.status, differences: [parsed.error] };
  const differences = compareInferResponse(sample.response, parsed.json, options);
  return { passed: differences.length === 0, model, status: res.status, differences };
}

/** One line for a log or a terminal: what passed, or the first differences. */
export function describeResult(result: SampleCheckResult): string {
  if (result.passed) return `sample check passed for ${result.model}`;
  return `sample check failed for ${result.model}:\n  ${result.differences.join('\n  ')}`;
}

function parseManifestText(text: string, where: string): ModelManifest {
  const raw = parseManifestJson(text, where);
  if (!isRecord(raw) || typeof raw.name !== 'string' || typeof raw.version !== 'string') {
    throw new Error(`${where} must be a JSON object with a string "name" and "version"`);
  }
  return raw as unknown as ModelManifest;
}

/**
 * A model's manifest alone (never model.onnx): from a model folder, a model.json file, or an s3:// folder
 * (`s3://bucket/name/version/`) or key. Only model.json is read, so read access to it is all this needs.
 */
export async function readManifest(
  location: string,
  options: { s3?: S3Client } = {},
): Promise<ModelManifest> {
  if (location.startsWith('s3://')) {
    const { bucket, key } = parseS3Uri(location);
    const manifestKey = key.endsWith(MANIFEST_FILE)
      ? key
      : `${key}${key === '' || key.endsWith('/') ? '' : '/'}${MANIFEST_FILE}`;
    const s3 = options.s3 ?? new (await s3Sdk()).S3Client({});
    const where = `s3://${bucket}/${manifestKey}`;
    let text: string | undefined;
    try {
      text = await readS3Text(s3, bucket, manifestKey);
    } catch (err) {
      throw new Error(`cannot read ${where}: ${(err as Error).name}: ${(err as Error).message}`);
    }
    if (text === undefined) throw new Error(`${where} has no body`);
    return parseManifestText(text, where);
  }
  const resolved = path.resolve(location);
  const stat = await fs.stat(resolved).catch(() => {
    throw new Error(`${location} does not exist: give a model folder or its model.json`);
  });
  const file = stat.isDirectory() ? path.join(resolved, MANIFEST_FILE) : resolved;
  const text = await fs.readFile(file, 'utf8').catch(() => {
    throw new Error(`${file} cannot be read: a model folder needs a model.json with a "sample"`);
  });
  return parseManifestText(text, file);
}
