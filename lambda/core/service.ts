/**
 * The transport-independent HTTP contract: routes, model lifecycle, errors.
 * The Lambda handler and the node server both turn their requests into an
 * HttpRequest and send back the HttpResponse, so the API is the same everywhere.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import {
  encodeResponse,
  HEADER_LENGTH,
  nest,
  bodyByteLength,
  bodyText,
  checkPayloadSize,
  isRecord,
  parseBody,
  prepareInference,
  splitRows,
  type OutputRows,
  type PreparedInference,
  type RawRequest,
} from './codec';
import { parseCsv, toCsv } from './csv';
import {
  BadRequestError,
  errorKind,
  InferenceError,
  MethodNotAllowedError,
  ModelNotReadyError,
  NotFoundError,
  statusOf,
  UnsupportedMediaTypeError,
} from './errors';
import { resolveLimits, type Limits } from './limits';
import type { OnnxModel, SessionTuning, TensorIO } from './model';
import { openModel, type ModelSpec } from './open';
import { DynamicBatcher, type BatchingOptions, type BatchingStats } from './batcher';
import type { DataCapturer } from './capture';

export type { ModelSpec } from './open';

export interface HttpRequest {
  readonly method: string;
  readonly path: string;
  /** Header names in lower case. */
  readonly headers: Readonly<Record<string, string | undefined>>;
  /** Bytes, or text as API Gateway gives a non-binary body. */
  readonly body: Buffer | string;
}

export interface HttpResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string | Buffer;
}

export type RequestFormat = 'json' | 'binary' | 'instances' | 'csv';

/** Hooks for logs and metrics; the core stays free of any logging library. */
export interface Telemetry {
  modelLoaded?(e: { model: string; version: string; source: string; loadMs: number; sha256: string }): void;
  modelFailed?(e: { location: string; error: string }): void;
  inference?(e: {
    model: string;
    version: string;
    batchSize: number;
    runMs: number;
    totalMs: number;
    format: RequestFormat;
  }): void;
  requestFailed?(e: { model?: string; kind: string; status: number; message: string; error?: unknown }): void;
  /** A sampled request's rows were captured (data capture on). */
  captured?(e: { model: string; version: string; written: number; skipped: number }): void;
  /** Capture is off for a model (a bad redact or hash name), or one capture failed; the request is served. */
  captureFailed?(e: { model: string; error: string }): void;
}

export interface ServiceOptions {
  readonly limits?: Partial<Limits>;
  readonly session?: SessionTuning;
  readonly s3?: S3Client;
  readonly cacheDir?: string;
  /** Also answer the SageMaker container contract: GET /ping, POST /invocations. @default false */
  readonly sagemaker?: boolean;
  /**
   * Join concurrent requests into one session run. For a long-running server;
   * a Lambda invocation holds one request, so there is nothing to join.
   * @default - off
   */
  readonly batching?: BatchingOptions;
  readonly telemetry?: Telemetry;
  /**
   * Data capture: sampled requests' rows go to the capturer's sink after the model runs. Never fails or
   * delays a response beyond building the lines.
   * @default - off
   */
  readonly capture?: DataCapturer;
}

type ModelState =
  | { readonly state: 'loading'; readonly name: string | undefined }
  | { readonly state: 'ready'; readonly model: OnnxModel }
  | { readonly state: 'failed'; readonly name: string | undefined; readonly reason: string };

const JSON_HEADERS = { 'content-type': 'application/json' };

function json(status: number, body: unknown, headers: Record<string, string> = {}): HttpResponse {
  return { status, headers: { ...JSON_HEADERS, ...headers }, body: JSON.stringify(body) };
}

/** A percent-encoded path segment; a malformed escape (e.g. `%E0%A4%A`) is the client's mistake, not a 500. */
function decodePathSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new BadRequestError(`the path segment ${JSON.stringify(segment)} is not valid percent-encoding`);
  }
}

function nowMs(): number {
  return performance.now();
}

export class InferenceService {
  readonly limits: Limits;
  private readonly states: ModelState[] = [];
  private readonly batchers = new Map<OnnxModel, DynamicBatcher>();
  private readonly options: ServiceOptions;

  constructor(options: ServiceOptions = {}) {
    this.options = options;
    this.limits = resolveLimits(options.limits);
  }

  /** Loads a model. A failure is kept, and reported by the ready routes, rather than thrown. */
  async load(spec: ModelSpec): Promise<OnnxModel | undefined> {
    const slot = this.states.length;
    this.states.push({ state: 'loading', name: spec.name });
    const started = nowMs();
    try {
      const { model, source } = await openModel(spec, this.options);
      if (this.find(model.name, slot)) {
        await model.release();
        throw new Error(`a model named '${model.name}' is already loaded`);
      }
      if (this.options.batching) this.batchers.set(model, new DynamicBatcher(model, this.options.batching));
      this.states[slot] = { state: 'ready', model };
      const captureOff = this.options.capture?.check(model);
      if (captureOff) this.options.telemetry?.captureFailed?.({ model: model.name, error: captureOff });
      this.options.telemetry?.modelLoaded?.({
        model: model.name,
        version: model.version,
        source,
        loadMs: nowMs() - started,
        sha256: model.sha256 ?? '',
      });
      return model;
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      this.states[slot] = { state: 'failed', name: spec.name, reason };
      this.options.telemetry?.modelFailed?.({ location: spec.location, error: reason });
      return undefined;
    }
  }

  /** The models that are ready. */
  models(): OnnxModel[] {
    return this.states.flatMap((s) => (s.state === 'ready' ? [s.model] : []));
  }

  /** Why the service is not ready, or undefined when every model is. */
  notReadyReason(): string | undefined {
    if (this.states.length === 0) return 'no model is configured';
    for (const s of this.states) {
      if (s.state === 'loading') return `model ${s.name ? `'${s.name}' ` : ''}is still loading`;
      if (s.state === 'failed') return `model ${s.name ? `'${s.name}' ` : ''}failed to load: ${s.reason}`;
    }
    return undefined;
  }

  /** Runs and requests per model, when batching is on. */
  batchingStats(): Record<string, BatchingStats> {
    return Object.fromEntries([...this.batchers].map(([m, b]) => [m.name, { ...b.stats }]));
  }

  async close(): Promise<void> {
    await Promise.all(this.models().map((m) => m.release()));
  }

  private find(name: string, except = -1): ModelState | undefined {
    return this.states.find(
      (s, i) => i !== except && (s.state === 'ready' ? s.model.name === name : s.name === name),
    );
  }

  private model(name: string, version?: string): OnnxModel {
    const s = this.find(name);
    if (!s) {
      // A model whose name is not known until its files are read may be the one asked for.
      const pending = this.states.find((x) => x.state !== 'ready' && x.name === undefined);
      if (pending?.state === 'loading')
        throw new ModelNotReadyError(`model '${name}' is not ready: still loading`);
      if (pending?.state === 'failed') {
        throw new ModelNotReadyError(
          `model '${name}' is not ready: a model failed to load: ${pending.reason}`,
        );
      }
      const known = this.models().map((m) => m.name);
      throw new NotFoundError(`unknown model '${name}'; this server has: ${known.join(', ') || '(none)'}`);
    }
    if (s.state === 'loading') throw new ModelNotReadyError(`model '${name}' is not ready: still loading`);
    if (s.state === 'failed') throw new ModelNotReadyError(`model '${name}' is not ready: ${s.reason}`);
    if (version !== undefined && version !== s.model.version) {
      throw new NotFoundError(
        `model '${name}' has no version '${version}'; it serves version ${s.model.version}`,
      );
    }
    return s.model;
  }

  /** Routes one request. Never throws: every failure becomes a JSON error response. */
  async handle(req: HttpRequest): Promise<HttpResponse> {
    let modelName: string | undefined;
    try {
      const path = req.path.length > 1 ? req.path.replace(/\/+$/, '') : req.path;
      const m = /^\/v2\/models\/([^/]+)(?:\/versions\/([^/]+))?(\/ready|\/infer)?$/.exec(path);
      if (m) {
        modelName = decodePathSegment(m[1] as string);
        const version = m[2] === undefined ? undefined : decodePathSegment(m[2]);
        const action = m[3];
        if (action === '/infer') {
          this.allow(req, 'POST');
          return await this.infer(this.model(modelName, version), req);
        }
        this.allow(req, 'GET');
        const model = this.model(modelName, version);
        return action === '/ready'
          ? json(200, { name: model.name, ready: true })
          : json(200, model.metadata());
      }
      switch (path) {
        case '/v2':
          this.allow(req, 'GET');
          return json(200, { name: 'model-deploy-kit', extensions: ['binary_tensor_data'] });
        case '/v2/health/live':
          this.allow(req, 'GET');
          return json(200, { live: true });
        case '/v2/health/ready': {
          this.allow(req, 'GET');
          const reason = this.notReadyReason();
          return reason ? json(503, { ready: false, error: reason }) : json(200, { ready: true });
        }
      }
      if (this.options.sagemaker) {
        if (path === '/ping') {
          this.allow(req, 'GET');
          const reason = this.notReadyReason();
          return reason ? json(503, { error: reason }) : json(200, { status: 'ok' });
        }
        if (path === '/invocations') {
          this.allow(req, 'POST');
          const model = this.models()[0];
          if (!model) throw new ModelNotReadyError(this.notReadyReason() ?? 'no model is ready');
          modelName = model.name;
          return await this.invocations(model, req);
        }
      }
      throw new NotFoundError(
        `no route for ${req.method} ${req.path}; see GET /v2/models/{name} and POST /v2/models/{name}/infer`,
      );
    } catch (err) {
      return this.fail(err, modelName);
    }
  }

  private allow(req: HttpRequest, method: string): void {
    if (req.method !== method) {
      throw new MethodNotAllowedError(`${req.method} is not allowed on ${req.path}; use ${method}`, [method]);
    }
  }

  private fail(err: unknown, model: string | undefined): HttpResponse {
    const status = statusOf(err);
    // Internal details stay in the logs; the client is told only that it was not its fault.
    const message = err instanceof InferenceError ? err.message : 'internal error while serving the request';
    this.options.telemetry?.requestFailed?.({ model, kind: errorKind(err), status, message, error: err });
    const headers: Record<string, string> =
      err instanceof MethodNotAllowedError ? { allow: err.allow.join(', ') } : {};
    return json(status, { error: message }, headers);
  }

  private async run(model: OnnxModel, prepared: PreparedInference, format: RequestFormat, started: number) {
    const runStarted = nowMs();
    const runner = this.batchers.get(model) ?? model;
    const results = await runner.run(prepared.feeds, prepared.fetches);
    const done = nowMs();
    this.options.telemetry?.inference?.({
      model: model.name,
      version: model.version,
      batchSize: prepared.batchSize,
      runMs: done - runStarted,
      totalMs: done - started,
      format,
    });
    const capturer = this.options.capture;
    if (capturer?.sample()) this.capture(capturer, model, prepared, results, done - started);
    return results;
  }

  private capture(
    capturer: DataCapturer,
    model: OnnxModel,
    prepared: PreparedInference,
    results: Awaited<ReturnType<OnnxModel['run']>>,
    latencyMs: number,
  ): void {
    const telemetry = this.options.telemetry;
    try {
      const outcome = capturer.capture({
        model,
        requestId: prepared.id,
        feeds: prepared.feeds,
        results,
        rows: prepared.batchSize,
        latencyMs,
      });
      if (outcome.error === undefined) {
        telemetry?.captured?.({ model: model.name, version: model.version, ...outcome });
      }
    } catch (err) {
      // The response is what matters: a capture that breaks is reported and the request goes on.
      telemetry?.captureFailed?.({
        model: model.name,
        error: err instanceof Error ? err.message : String(err),
      });
    }
  }

  private async infer(
    model: OnnxModel,
    req: HttpRequest,
    accept: 'json' | 'csv' = 'json',
  ): Promise<HttpResponse> {
    const started = nowMs();
    const raw = parseBody(req.body, req.headers[HEADER_LENGTH], this.limits);
    const header = raw.header;
    if (isRecord(header) && header.inputs === undefined && 'instances' in header) {
      if (raw.binary?.length) {
        throw new BadRequestError(
          'the "instances" form carries no binary data; drop Inference-Header-Content-Length',
        );
      }
      return this.instances(model, header.instances, started, accept);
    }
    const prepared = prepareInference(model, raw, this.limits);
    const results = await this.run(model, prepared, raw.binary ? 'binary' : 'json', started);
    const encoded = encodeResponse({ modelName: model.name, modelVersion: model.version }, prepared, results);
    return { status: 200, headers: encoded.headers, body: encoded.body };
  }

  /** The `{"instances": [...]}` form, for single-input models; answers `{"predictions": [...]}`. */
  private async instances(
    model: OnnxModel,
    instances: unknown,
    started: number,
    accept: 'json' | 'csv',
    format: RequestFormat = 'instances',
  ): Promise<HttpResponse> {
    const tensorInputs = model.inputs.filter((i): i is TensorIO => i.tensor);
    const input = tensorInputs[0];
    if (tensorInputs.length !== 1 || !input) {
      throw new BadRequestError(
        `the "instances" form needs a model with exactly one input; this one has ${model.inputs.map((i) => `'${i.name}'`).join(', ')}. Send a V2 request with "inputs"`,
      );
    }
    if (!Array.isArray(instances) || instances.length === 0) {
      throw new BadRequestError('"instances" must be a non-empty array with one item per row');
    }
    const rowShape: number[] = [];
    for (let node: unknown = instances[0]; Array.isArray(node); node = node[0]) rowShape.push(node.length);
    const shape = [instances.length, ...rowShape];
    const raw: RawRequest = {
      header: { inputs: [{ name: input.name, datatype: input.info.datatype, shape, data: instances }] },
      binary: undefined,
    };
    const prepared = prepareInference(model, raw, this.limits);
    const results = await this.run(model, prepared, format, started);
    const rows = instances.length;
    const outputs = splitRows(results, prepared.fetches, rows);
    if (!Array.isArray(outputs)) {
      throw new BadRequestError(
        `output '${outputs.unsplittable}' has shape [${outputs.dims.join(', ')}], which is not one row per instance; send a V2 request with "inputs" instead`,
      );
    }
    if (accept === 'csv') {
      const lines = Array.from({ length: rows }, (_, r) => outputs.flatMap((o) => o.rows[r] ?? []));
      return { status: 200, headers: { 'content-type': 'text/csv' }, body: toCsv(lines) };
    }
    const single = outputs.length === 1 ? outputs[0] : undefined;
    const row = (o: OutputRows, r: number) => nest(o.rows[r] ?? [], o.rowDims);
    const predictions = Array.from({ length: rows }, (_, r) =>
      single ? row(single, r) : Object.fromEntries(outputs.map((o) => [o.name, row(o, r)])),
    );
    return json(200, { predictions });
  }

  /** SageMaker's POST /invocations: V2 or instances JSON, or CSV rows. */
  private async invocations(model: OnnxModel, req: HttpRequest): Promise<HttpResponse> {
    const started = nowMs();
    const type = (req.headers['content-type'] ?? 'application/json').split(';')[0]?.trim().toLowerCase();
    const accept = (req.headers.accept ?? '').toLowerCase().includes('text/csv') ? 'csv' : 'json';
    if (type === 'text/csv') {
      checkPayloadSize(bodyByteLength(req.body), this.limits);
      return this.instances(
        model,
        parseCsv(bodyText(req.body), this.limits.maxBatch),
        started,
        accept,
        'csv',
      );
    }
    if (type !== 'application/json' && type !== 'application/octet-stream') {
      throw new UnsupportedMediaTypeError(
        `content type ${type} is not supported; send application/json or text/csv`,
      );
    }
    return this.infer(model, req, accept);
  }
}
