/**
 * InferenceService end to end through handle(), with no HTTP: every route, the model lifecycle, the
 * instances form, the SageMaker contract and telemetry, on real models checked against direct runs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import * as ort from 'onnxruntime-node';

import type { HttpRequest, HttpResponse, ServiceOptions, Telemetry } from '../../../lambda/core/service';
import { InferenceService } from '../../../lambda/core/service';
import type { InferResponse } from '../../../lambda/core/types';
import {
  addMulModel,
  classifierModel,
  gatherModel,
  makeTempDir,
  mixedModel,
  mlpModel,
  removeDir,
  sha256Hex,
  twoHeadModel,
  writeModel,
  type FixtureModel,
  type WriteModelOptions,
} from '../../fixtures/models';
import { buildModel, int, seededRandom, tensorInfo } from '../../../models/onnx-builder';
import { binaryBody, dataText, decodeResponse, jsonBody, leBytes, outputOf } from '../../support/v2';

// Some requests below make onnxruntime fail on purpose; its own error log would only be noise.
ort.env.logLevel = 'fatal';

const dirs: string[] = [];

/** Writes a fixture to a temp folder, removed after all tests. */
function place(model: FixtureModel, options: WriteModelOptions = {}) {
  const w = writeModel(model, options);
  dirs.push(w.root);
  return w;
}

interface Recorded {
  loaded: Parameters<NonNullable<Telemetry['modelLoaded']>>[0][];
  failed: Parameters<NonNullable<Telemetry['modelFailed']>>[0][];
  inference: Parameters<NonNullable<Telemetry['inference']>>[0][];
  requestFailed: Parameters<NonNullable<Telemetry['requestFailed']>>[0][];
}

function recorder(): { telemetry: Telemetry; events: Recorded } {
  const events: Recorded = { loaded: [], failed: [], inference: [], requestFailed: [] };
  return {
    events,
    telemetry: {
      modelLoaded: (e) => events.loaded.push(e),
      modelFailed: (e) => events.failed.push(e),
      inference: (e) => events.inference.push(e),
      requestFailed: (e) => events.requestFailed.push(e),
    },
  };
}

const services: InferenceService[] = [];
function service(options: ServiceOptions = {}): InferenceService {
  const s = new InferenceService({ session: { intraOpNumThreads: 1 }, ...options });
  services.push(s);
  return s;
}

const EMPTY = Buffer.alloc(0);
const call = (
  svc: InferenceService,
  method: string,
  p: string,
  body: Buffer = EMPTY,
  headers: HttpRequest['headers'] = {},
): Promise<HttpResponse> => svc.handle({ method, path: p, headers, body });

function text(res: HttpResponse): string {
  return typeof res.body === 'string' ? res.body : res.body.toString('utf8');
}

function bodyOf(res: HttpResponse): Record<string, unknown> {
  expect(res.headers['content-type']).toBe('application/json');
  return JSON.parse(text(res)) as Record<string, unknown>;
}

/** An error response: JSON {"error": "..."} with this status and a message that matches. */
function expectError(res: HttpResponse, status: number, message: RegExp): void {
  expect({ status: res.status, body: bodyOf(res) }).toEqual({
    status,
    body: { error: expect.stringMatching(message) as unknown },
  });
}

function rows<T>(flat: readonly T[], width: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < flat.length; i += width) out.push(flat.slice(i, i + width));
  return out;
}

async function directRun(model: FixtureModel, feeds: Record<string, ort.Tensor>, fetches?: string[]) {
  const session = await ort.InferenceSession.create(model.bytes);
  try {
    return fetches ? await session.run(feeds, fetches) : await session.run(feeds);
  } finally {
    await session.release();
  }
}

function floats(results: ort.InferenceSession.ReturnType, name: string): number[] {
  const t = results[name];
  if (!t) throw new Error(`no output ${name}`);
  return Array.from(t.data as Float32Array);
}

const addMul = addMulModel();
const mlp = mlpModel();
const twoHead = twoHeadModel();
const classifier = classifierModel();
const gather = gatherModel();
const mixed = mixedModel();

const A = [1, 2, 3, 4, 5, 6];
const B = [0.5, -1, 2, 0, 10, -3];
const abRequest = (extra: Record<string, unknown> = {}) => ({
  inputs: [
    { name: 'a', shape: [2, 3], datatype: 'FP32', data: A },
    { name: 'b', shape: [2, 3], datatype: 'FP32', data: B },
  ],
  ...extra,
});
const ROWS = [
  [5.1, 3.5, 1.4, 0.2],
  [6.7, 3.1, 4.4, 1.4],
  [-1, 0, 2.5, 100],
];

let svc: InferenceService;
const rec = recorder();
let mlpPath: string;

beforeAll(async () => {
  svc = service({ telemetry: rec.telemetry });
  mlpPath = place(mlp, { fileName: 'mlp.onnx' }).modelPath;
  const loadedModels = await Promise.all([
    svc.load({ location: place(addMul, { manifest: { name: 'addmul', version: '2.0.0' } }).dir }),
    svc.load({ location: mlpPath }),
    svc.load({ location: place(twoHead, { manifest: { name: 'twohead' } }).dir }),
    svc.load({ location: place(classifier, { manifest: { name: 'classifier' } }).dir }),
    svc.load({ location: place(gather, { fileName: 'gather.onnx' }).modelPath }),
    svc.load({ location: place(mixed, { folderName: 'mixed' }).dir }),
  ]);
  expect(loadedModels.map((m) => m?.name)).toEqual([
    'addmul',
    'mlp',
    'twohead',
    'classifier',
    'gather',
    'mixed',
  ]);
});

beforeEach(() => {
  rec.events.inference.length = 0;
  rec.events.requestFailed.length = 0;
});

afterAll(async () => {
  await Promise.all(services.map((s) => s.close()));
  for (const d of dirs) removeDir(d);
});

describe('routes', () => {
  it('GET /v2 describes the server and its extensions', async () => {
    const res = await call(svc, 'GET', '/v2');
    expect(res.status).toBe(200);
    expect(bodyOf(res)).toEqual({ name: 'model-deploy-kit', extensions: ['binary_tensor_data'] });
  });

  it('GET /v2/health/live and /v2/health/ready', async () => {
    const live = await call(svc, 'GET', '/v2/health/live');
    expect([live.status, bodyOf(live)]).toEqual([200, { live: true }]);
    const ready = await call(svc, 'GET', '/v2/health/ready');
    expect([ready.status, bodyOf(ready)]).toEqual([200, { ready: true }]);
    const slash = await call(svc, 'GET', '/v2/health/live/');
    expect(slash.status).toBe(200);
  });

  it('GET /v2/models/{name} is the V2 metadata', async () => {
    const res = await call(svc, 'GET', '/v2/models/addmul');
    expect(res.status).toBe(200);
    expect(bodyOf(res)).toEqual({
      name: 'addmul',
      versions: ['2.0.0'],
      platform: 'onnxruntime_onnx',
      inputs: [
        { name: 'a', datatype: 'FP32', shape: [-1, 3] },
        { name: 'b', datatype: 'FP32', shape: [-1, 3] },
      ],
      outputs: [
        { name: 'sum', datatype: 'FP32', shape: [-1, 3] },
        { name: 'product', datatype: 'FP32', shape: [-1, 3] },
      ],
    });
    const versioned = await call(svc, 'GET', '/v2/models/addmul/versions/2.0.0');
    expect(text(versioned)).toBe(text(res));
  });

  it('lists a ZipMap output under unsupported_outputs', async () => {
    const meta = bodyOf(await call(svc, 'GET', '/v2/models/classifier'));
    expect(meta.outputs).toEqual([{ name: 'label', datatype: 'INT64', shape: [-1] }]);
    expect(meta.unsupported_outputs).toEqual([
      { name: 'probabilities', reason: expect.stringMatching(/sequence or map/) as unknown },
    ]);
  });

  it('GET /v2/models/{name}/ready, with and without the version', async () => {
    for (const p of ['/v2/models/addmul/ready', '/v2/models/addmul/versions/2.0.0/ready']) {
      const res = await call(svc, 'GET', p);
      expect([res.status, bodyOf(res)]).toEqual([200, { name: 'addmul', ready: true }]);
    }
  });

  it('a version the model does not serve is 404 on every model route', async () => {
    for (const [method, p] of [
      ['GET', '/v2/models/addmul/versions/9'],
      ['GET', '/v2/models/addmul/versions/9/ready'],
      ['POST', '/v2/models/addmul/versions/9/infer'],
    ] as const) {
      const res = await call(svc, method, p, jsonBody(abRequest()));
      expectError(res, 404, /^model 'addmul' has no version '9'; it serves version 2\.0\.0$/);
    }
  });

  it('an unknown model is 404 and lists the models there are', async () => {
    for (const [method, p] of [
      ['GET', '/v2/models/nope'],
      ['GET', '/v2/models/nope/ready'],
      ['POST', '/v2/models/nope/infer'],
    ] as const) {
      expectError(
        await call(svc, method, p, jsonBody(abRequest())),
        404,
        /^unknown model 'nope'; this server has: addmul, mlp, twohead, classifier, gather, mixed$/,
      );
    }
  });

  it.each([
    ['GET', '/'],
    ['GET', '/v1/models/addmul'],
    ['GET', '/v2/models'],
    ['GET', '/v2/models/addmul/explain'],
    ['POST', '/v2/models/addmul/infer/extra'],
    ['GET', '/ping'],
    ['POST', '/invocations'],
  ])('%s %s is an unknown route: 404', async (method, p) => {
    expectError(
      await call(svc, method, p),
      404,
      new RegExp(`^no route for ${method} ${p}; see GET /v2/models`),
    );
  });

  it.each([
    ['GET', '/v2/models/addmul/infer', 'POST'],
    ['PUT', '/v2/models/addmul/versions/2.0.0/infer', 'POST'],
    ['POST', '/v2/models/addmul', 'GET'],
    ['DELETE', '/v2/models/addmul/ready', 'GET'],
    ['POST', '/v2', 'GET'],
    ['POST', '/v2/health/live', 'GET'],
    ['HEAD', '/v2/health/ready', 'GET'],
  ])('%s %s is 405 with Allow: %s', async (method, p, allow) => {
    const res = await call(svc, method, p);
    expectError(res, 405, new RegExp(`^${method} is not allowed on ${p}; use ${allow}$`));
    expect(res.headers.allow).toBe(allow);
  });

  it('decodes a percent-encoded model name, and a malformed escape is a 400', async () => {
    expect((await call(svc, 'GET', '/v2/models/add%6Dul')).status).toBe(200);
    expectError(
      await call(svc, 'GET', '/v2/models/%E0%A4%A/ready'),
      400,
      /"%E0%A4%A" is not valid percent-encoding/,
    );
    expectError(
      await call(svc, 'GET', '/v2/models/addmul/versions/%ZZ'),
      400,
      /"%ZZ" is not valid percent-encoding/,
    );
  });
});

describe('infer', () => {
  it('answers a V2 JSON request as onnxruntime computes it', async () => {
    const res = await call(svc, 'POST', '/v2/models/addmul/infer', jsonBody(abRequest({ id: 'r-1' })));
    expect(res.status).toBe(200);
    const want = await directRun(addMul, {
      a: new ort.Tensor('float32', Float32Array.from(A), [2, 3]),
      b: new ort.Tensor('float32', Float32Array.from(B), [2, 3]),
    });
    expect(bodyOf(res)).toEqual({
      model_name: 'addmul',
      model_version: '2.0.0',
      id: 'r-1',
      outputs: [
        { name: 'sum', datatype: 'FP32', shape: [2, 3], data: floats(want, 'sum') },
        { name: 'product', datatype: 'FP32', shape: [2, 3], data: floats(want, 'product') },
      ],
    });
    const versioned = await call(
      svc,
      'POST',
      '/v2/models/addmul/versions/2.0.0/infer',
      jsonBody(abRequest({ id: 'r-1' })),
    );
    expect(text(versioned)).toBe(text(res));
  });

  it('answers a binary request with a binary response', async () => {
    const a = leBytes(Float32Array.from(A));
    const b = leBytes(Float32Array.from(B));
    const { body, headerLength } = binaryBody(
      {
        inputs: [
          { name: 'a', shape: [2, 3], datatype: 'FP32', parameters: { binary_data_size: a.length } },
          { name: 'b', shape: [2, 3], datatype: 'FP32', parameters: { binary_data_size: b.length } },
        ],
        outputs: [{ name: 'product', parameters: { binary_data: true } }, { name: 'sum' }],
      },
      [a, b],
    );
    const res = await call(svc, 'POST', '/v2/models/addmul/infer', body, {
      'inference-header-content-length': headerLength,
      'content-type': 'application/octet-stream',
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/octet-stream');
    const { response, binary } = decodeResponse(res.body, res.headers);
    const want = await directRun(addMul, {
      a: new ort.Tensor('float32', Float32Array.from(A), [2, 3]),
      b: new ort.Tensor('float32', Float32Array.from(B), [2, 3]),
    });
    expect(binary.get('product')).toEqual(leBytes(Float32Array.from(floats(want, 'product'))));
    expect(outputOf(response, 'sum').data).toEqual(floats(want, 'sum'));
    expect(rec.events.inference.map((e) => e.format)).toEqual(['binary']);
  });

  it('keeps 64-bit integers exact through the whole path', async () => {
    const res = await call(
      svc,
      'POST',
      '/v2/models/mixed/infer',
      jsonBody({
        inputs: [
          { name: 'ids', shape: [2], datatype: 'INT64', data: ['9007199254740993', '-9223372036854775808'] },
          { name: 'mask', shape: [2], datatype: 'BOOL', data: [true, false] },
          { name: 'text', shape: [2], datatype: 'BYTES', data: ['x', 'y'] },
        ],
        outputs: [{ name: 'next_ids' }, { name: 'not_mask' }],
      }),
    );
    expect(res.status).toBe(200);
    expect(dataText(text(res), 'next_ids')).toBe('9007199254740994,-9223372036854775807');
    expect(outputOf(decodeResponse(res.body, res.headers).response, 'not_mask').data).toEqual([false, true]);
  });

  it('fetches only tensor outputs of an ONNX-ML model, and asking for the ZipMap one is a 400', async () => {
    const x = [3, 1, 0, 2, -2, -2];
    const ok = await call(
      svc,
      'POST',
      '/v2/models/classifier/infer',
      jsonBody({ inputs: [{ name: 'x', shape: [3, 2], datatype: 'FP32', data: x }] }),
    );
    const want = await directRun(classifier, { x: new ort.Tensor('float32', Float32Array.from(x), [3, 2]) }, [
      'label',
    ]);
    expect(bodyOf(ok).outputs).toEqual([
      {
        name: 'label',
        datatype: 'INT64',
        shape: [3],
        data: Array.from(want.label?.data as BigInt64Array, Number),
      },
    ]);
    const bad = await call(
      svc,
      'POST',
      '/v2/models/classifier/infer',
      jsonBody({
        inputs: [{ name: 'x', shape: [3, 2], datatype: 'FP32', data: x }],
        outputs: [{ name: 'probabilities' }],
      }),
    );
    expectError(bad, 400, /^output 'probabilities' is a sequence or map .*; ask for one of: label$/);
  });

  it('an index onnxruntime rejects at run time is a 400, not a 500', async () => {
    const res = await call(
      svc,
      'POST',
      '/v2/models/gather/infer',
      jsonBody({ inputs: [{ name: 'idx', shape: [2], datatype: 'INT64', data: [0, 4] }] }),
    );
    expectError(res, 400, /^the model could not run on this input: .*out of data bounds/);
    expect(rec.events.requestFailed).toEqual([
      {
        model: 'gather',
        kind: 'BadRequest',
        status: 400,
        message: expect.stringMatching(/out of data bounds/) as unknown,
        error: expect.anything() as unknown,
      },
    ]);
  });

  it('payload and batch limits are 413', async () => {
    const strict = service({ limits: { maxPayloadBytes: 400, maxBatch: 2 } });
    await strict.load({ location: mlpPath });
    const big = jsonBody({
      inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: ROWS.slice(0, 2) }],
      id: 'x'.repeat(400),
    });
    expectError(
      await call(strict, 'POST', '/v2/models/mlp/infer', big),
      413,
      /request body is \d+ bytes; the limit is 400/,
    );
    const three = jsonBody({ inputs: [{ name: 'input', shape: [3, 4], datatype: 'FP32', data: ROWS }] });
    expectError(
      await call(strict, 'POST', '/v2/models/mlp/infer', three),
      413,
      /input 'input' has a batch of 3 rows; the limit is 2/,
    );
    const two = jsonBody({
      inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: ROWS.slice(0, 2) }],
    });
    expect((await call(strict, 'POST', '/v2/models/mlp/infer', two)).status).toBe(200);
  });

  it('a malformed body is a 400 that says so', async () => {
    expectError(
      await call(svc, 'POST', '/v2/models/addmul/infer', Buffer.from('{"inputs": [')),
      400,
      /^request body is not valid JSON/,
    );
    expectError(await call(svc, 'POST', '/v2/models/addmul/infer'), 400, /^request body is empty/);
  });
});

describe('the instances form', () => {
  const mlpFeeds = (r: number[][]) => ({
    input: new ort.Tensor('float32', Float32Array.from(r.flat()), [r.length, 4]),
  });

  it('{"instances": [...]} on a one-input model answers {"predictions": [...]}, one per row', async () => {
    const res = await call(svc, 'POST', '/v2/models/mlp/infer', jsonBody({ instances: ROWS }));
    expect(res.status).toBe(200);
    const want = await directRun(mlp, mlpFeeds(ROWS));
    expect(bodyOf(res)).toEqual({ predictions: rows(floats(want, 'output'), 3) });
    expect(rec.events.inference).toEqual([
      expect.objectContaining({ model: 'mlp', batchSize: 3, format: 'instances' }),
    ]);
  });

  it('with several outputs, each prediction is an object by output name', async () => {
    const x = [
      [1, 5, 2],
      [-1, -2, -0.5],
    ];
    const res = await call(svc, 'POST', '/v2/models/twohead/infer', jsonBody({ instances: x }));
    const want = await directRun(twoHead, {
      x: new ort.Tensor('float32', Float32Array.from(x.flat()), [2, 3]),
    });
    const doubled = rows(floats(want, 'doubled'), 3);
    const argmax = Array.from(want.argmax?.data as BigInt64Array, Number);
    expect(bodyOf(res)).toEqual({
      predictions: [
        { doubled: doubled[0], argmax: argmax[0] },
        { doubled: doubled[1], argmax: argmax[1] },
      ],
    });
    expect(argmax).toEqual([1, 2]);
  });

  it('a model with several inputs cannot take instances: 400 naming its inputs', async () => {
    const res = await call(svc, 'POST', '/v2/models/addmul/infer', jsonBody({ instances: [[1, 2, 3]] }));
    expectError(res, 400, /the "instances" form needs a model with exactly one input; this one has 'a', 'b'/);
  });

  it.each([
    [{ instances: [] }, /"instances" must be a non-empty array with one item per row/],
    [{ instances: { a: 1 } }, /"instances" must be a non-empty array/],
    [
      { instances: [[1, 2, 3]] },
      /input 'input' has shape \[1, 3\] but the model expects \[-1, 4\]: dimension 1 must be 4/,
    ],
    [
      {
        instances: [
          [1, 2, 3, 4],
          [1, 2],
        ],
      },
      /input 'input' data\[1\] should be an array of 4/,
    ],
    [{ instances: [[1, 2, 'x', 4]] }, /input 'input' data\[2\] is "x"; FP32 values must be numbers/],
  ])('%j is a 400', async (body, message) => {
    expectError(await call(svc, 'POST', '/v2/models/mlp/infer', jsonBody(body)), 400, message);
  });
});

describe('dynamic batching', () => {
  it('requests that arrive together share one session run, and each gets its own answer', async () => {
    const batched = service({ batching: { maxBatchSize: 8 } });
    await batched.load({ location: mlpPath });
    const one = (r: number[]) =>
      jsonBody({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: r }] });
    const replies = await Promise.all(ROWS.map((r) => call(batched, 'POST', '/v2/models/mlp/infer', one(r))));
    expect(batched.batchingStats()).toMatchObject({ mlp: { runs: 1, requests: ROWS.length, joinedRuns: 1 } });
    const want = await directRun(mlp, {
      input: new ort.Tensor('float32', Float32Array.from(ROWS.flat()), [3, 4]),
    });
    const perRow = rows(floats(want, 'output'), 3);
    replies.forEach((res, i) => {
      expect(res.status).toBe(200);
      expect(outputOf(bodyOf(res) as unknown as InferResponse, 'output')).toMatchObject({
        shape: [1, 3],
        data: perRow[i],
      });
    });
  });

  it('is off unless asked for', () => {
    expect(svc.batchingStats()).toEqual({});
  });
});

describe('the instances form, when rows cannot be split', () => {
  it('an output that is not one row per instance is a 400 that says to send V2', async () => {
    // ReduceSum over everything: one number for the whole batch.
    const total: FixtureModel = {
      bytes: buildModel({
        inputs: [tensorInfo('x', 'float', ['batch', 2])],
        outputs: [tensorInfo('total', 'float', [])],
        nodes: [{ op: 'ReduceSum', inputs: ['x'], outputs: ['total'], attrs: { keepdims: int(0) } }],
      }),
      inputs: [],
      outputs: [],
    };
    const svc2 = service();
    await svc2.load({ location: place(total, { folderName: 'total' }).dir });
    const res = await call(
      svc2,
      'POST',
      '/v2/models/total/infer',
      jsonBody({
        instances: [
          [1, 2],
          [3, 4],
        ],
      }),
    );
    expectError(
      res,
      400,
      /output 'total' has shape \[\], which is not one row per instance; send a V2 request/,
    );
  });

  it('binary data after an instances body is a 400', async () => {
    const svc2 = service();
    await svc2.load({ location: place(mlpModel(), { folderName: 'mlp2' }).dir });
    const head = Buffer.from(JSON.stringify({ instances: [[1, 2, 3, 4]] }));
    const res = await call(svc2, 'POST', '/v2/models/mlp2/infer', Buffer.concat([head, Buffer.alloc(8)]), {
      'inference-header-content-length': String(head.length),
    });
    expectError(res, 400, /the "instances" form carries no binary data/);
  });
});

describe('loading and readiness', () => {
  it('is 503 while a model loads, then ready', async () => {
    const s = service();
    const loading = s.load({ location: mlpPath, name: 'late' });
    const ready = await call(s, 'GET', '/v2/health/ready');
    expect([ready.status, bodyOf(ready)]).toEqual([
      503,
      { ready: false, error: "model 'late' is still loading" },
    ]);
    expectError(
      await call(s, 'GET', '/v2/models/late/ready'),
      503,
      /^model 'late' is not ready: still loading$/,
    );
    expectError(await call(s, 'GET', '/v2/models/late'), 503, /still loading/);
    expectError(
      await call(s, 'POST', '/v2/models/late/infer', jsonBody({ instances: ROWS })),
      503,
      /^model 'late' is not ready: still loading$/,
    );
    expectError(
      await call(s, 'GET', '/v2/models/other'),
      404,
      /^unknown model 'other'; this server has: \(none\)$/,
    );
    expect((await loading)?.name).toBe('late');
    expect((await call(s, 'GET', '/v2/health/ready')).status).toBe(200);
    expect((await call(s, 'GET', '/v2/models/late/ready')).status).toBe(200);
  });

  it('a model whose name is not known yet may be the one asked for: 503, not 404', async () => {
    const s = service();
    const loading = s.load({ location: mlpPath });
    expectError(
      await call(s, 'GET', '/v2/models/mlp/ready'),
      503,
      /^model 'mlp' is not ready: still loading$/,
    );
    await loading;
    expect((await call(s, 'GET', '/v2/models/mlp/ready')).status).toBe(200);
  });

  it('with no model configured, ready is 503', async () => {
    const res = await call(service(), 'GET', '/v2/health/ready');
    expect([res.status, bodyOf(res)]).toEqual([503, { ready: false, error: 'no model is configured' }]);
  });

  it('a model whose sha256 does not match is never served: ready is 503 with the reason', async () => {
    const { telemetry, events } = recorder();
    const s = service({ telemetry });
    const bad = place(addMul, { manifest: { name: 'addmul', sha256: '0'.repeat(64) } });
    expect(await s.load({ location: bad.dir, name: 'broken' })).toBeUndefined();
    const sha = sha256Hex(addMul.bytes);
    const reason = `model.onnx has sha256 ${sha}, but the manifest's sha256 is ${'0'.repeat(64)}`;

    const ready = await call(s, 'GET', '/v2/health/ready');
    expect(ready.status).toBe(503);
    expect(bodyOf(ready)).toEqual({ ready: false, error: expect.stringContaining(reason) as unknown });
    expect(bodyOf(ready).error).toMatch(/^model 'broken' failed to load: .*refusing to serve it$/);
    expectError(
      await call(s, 'GET', '/v2/models/broken/ready'),
      503,
      /^model 'broken' is not ready: .*refusing to serve it$/,
    );
    expectError(await call(s, 'POST', '/v2/models/broken/infer', jsonBody(abRequest())), 503, /refusing/);
    expect(events.failed).toEqual([{ location: bad.dir, error: expect.stringContaining(reason) as unknown }]);
    expect(events.loaded).toEqual([]);
  });

  it('an unnamed model that failed makes any model route 503, since it may be the one asked for', async () => {
    const s = service();
    await s.load({ location: place(addMul, { manifest: { sha256: '1'.repeat(64) } }).dir });
    expectError(
      await call(s, 'GET', '/v2/models/fixture/ready'),
      503,
      /^model 'fixture' is not ready: a model failed to load: .*refusing/,
    );
    const ready = await call(s, 'GET', '/v2/health/ready');
    expect(ready.status).toBe(503);
    expect(bodyOf(ready)).toEqual({
      ready: false,
      error: expect.stringMatching(/^model failed to load: .*refusing/) as unknown,
    });
  });

  it.each([
    [
      'an expectedSha256 that does not match',
      () => ({ location: mlpPath, expectedSha256: sha256Hex(addMul.bytes) }),
      /the expected sha256 is .*refusing/,
    ],
    ['a file that is not ONNX', () => ({ location: writeJunk() }), /^onnxruntime cannot load .*junk\.onnx: /],
    [
      'a name with a space',
      () => ({ location: mlpPath, name: 'my model' }),
      /^model name "my model" must start with a letter or digit/,
    ],
    [
      'a missing path',
      () => ({ location: '/nonexistent/model.onnx' }),
      /^model path \/nonexistent\/model\.onnx does not exist$/,
    ],
  ])('%s fails the load and is reported', async (_title, spec, reason) => {
    const { telemetry, events } = recorder();
    const s = service({ telemetry });
    expect(await s.load(spec())).toBeUndefined();
    expect(events.failed).toHaveLength(1);
    expect(events.failed[0]?.error).toMatch(reason);
    const ready = await call(s, 'GET', '/v2/health/ready');
    expect(ready.status).toBe(503);
  });

  it('a second model with the same name is refused; the first keeps serving', async () => {
    const s = service();
    expect(await s.load({ location: mlpPath })).toBeDefined();
    expect(await s.load({ location: mlpPath })).toBeUndefined();
    expect(s.notReadyReason()).toMatch(/failed to load: a model named 'mlp' is already loaded/);
    const res = await call(s, 'POST', '/v2/models/mlp/infer', jsonBody({ instances: ROWS }));
    expect(res.status).toBe(200);
  });

  it('reports each model it loads', () => {
    expect(rec.events.loaded.map((e) => [e.model, e.version, e.sha256])).toEqual(
      expect.arrayContaining([
        ['addmul', '2.0.0', sha256Hex(addMul.bytes)],
        ['mlp', '1', sha256Hex(mlp.bytes)],
        ['mixed', '1', sha256Hex(mixed.bytes)],
      ]),
    );
    expect(rec.events.loaded).toHaveLength(6);
    const mlpEvent = rec.events.loaded.find((e) => e.model === 'mlp');
    expect(mlpEvent).toEqual({
      model: 'mlp',
      version: '1',
      source: mlpPath,
      sha256: sha256Hex(mlp.bytes),
      loadMs: expect.any(Number) as unknown,
    });
  });
});

function writeJunk(): string {
  const dir = makeTempDir();
  dirs.push(dir);
  const p = path.join(dir, 'junk.onnx');
  fs.writeFileSync(p, 'this is not a protobuf');
  return p;
}

describe('SageMaker contract', () => {
  let sm: InferenceService;
  const smRec = recorder();

  beforeAll(async () => {
    sm = service({ sagemaker: true, telemetry: smRec.telemetry, limits: { maxBatch: 3 } });
    await sm.load({ location: mlpPath });
  });

  beforeEach(() => {
    smRec.events.inference.length = 0;
  });

  const invoke = (body: string | Buffer, headers: Record<string, string>) =>
    call(sm, 'POST', '/invocations', Buffer.isBuffer(body) ? body : Buffer.from(body), headers);
  const csvOf = (r: number[][]) => r.map((row) => row.join(',')).join('\n');
  const parseCsvBody = (res: HttpResponse) =>
    text(res)
      .trim()
      .split('\n')
      .map((line) => line.split(',').map(Number));

  it('GET /ping is 200 when ready; POST /ping is 405', async () => {
    const res = await call(sm, 'GET', '/ping');
    expect([res.status, bodyOf(res)]).toEqual([200, { status: 'ok' }]);
    expect((await call(sm, 'POST', '/ping')).status).toBe(405);
    const get = await call(sm, 'GET', '/invocations');
    expect([get.status, get.headers.allow]).toEqual([405, 'POST']);
  });

  it('POST /invocations takes a V2 request', async () => {
    const res = await invoke(
      JSON.stringify({ inputs: [{ name: 'input', shape: [3, 4], datatype: 'FP32', data: ROWS }] }),
      { 'content-type': 'application/json; charset=utf-8' },
    );
    const want = await directRun(mlp, {
      input: new ort.Tensor('float32', Float32Array.from(ROWS.flat()), [3, 4]),
    });
    expect(bodyOf(res)).toEqual({
      model_name: 'mlp',
      model_version: '1',
      outputs: [{ name: 'output', datatype: 'FP32', shape: [3, 3], data: floats(want, 'output') }],
    });
    expect(smRec.events.inference.map((e) => e.format)).toEqual(['json']);
  });

  it('POST /invocations takes instances, with no content type too', async () => {
    const want = rows(
      floats(
        await directRun(mlp, { input: new ort.Tensor('float32', Float32Array.from(ROWS.flat()), [3, 4]) }),
        'output',
      ),
      3,
    );
    const variants: Record<string, string>[] = [{ 'content-type': 'application/json' }, {}];
    for (const headers of variants) {
      const res = await invoke(JSON.stringify({ instances: ROWS }), headers);
      expect(bodyOf(res)).toEqual({ predictions: want });
    }
  });

  it('POST /invocations takes text/csv rows, and answers CSV when Accept asks', async () => {
    const want = rows(
      floats(
        await directRun(mlp, { input: new ort.Tensor('float32', Float32Array.from(ROWS.flat()), [3, 4]) }),
        'output',
      ),
      3,
    );
    const json = await invoke(`${csvOf(ROWS)}\n`, { 'content-type': 'text/csv' });
    expect(bodyOf(json)).toEqual({ predictions: want });
    expect(smRec.events.inference).toEqual([
      expect.objectContaining({ model: 'mlp', batchSize: 3, format: 'csv' }),
    ]);

    const csv = await invoke(csvOf(ROWS), { 'content-type': 'text/csv; charset=utf-8', accept: 'text/csv' });
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toBe('text/csv');
    expect(parseCsvBody(csv)).toEqual(want);

    const fromJson = await invoke(JSON.stringify({ instances: ROWS }), {
      'content-type': 'application/json',
      accept: 'text/csv',
    });
    expect(parseCsvBody(fromJson)).toEqual(want);
  });

  it('other content types are 415', async () => {
    const res = await invoke('<rows/>', { 'content-type': 'application/xml' });
    expectError(
      res,
      415,
      /^content type application\/xml is not supported; send application\/json or text\/csv$/,
    );
  });

  it.each([
    ['1,2,3,4\n5,6,x,8', 400, /^CSV line 2, column 3: "x" is not a number$/],
    ['1,2,3,4\n5,6,,8', 400, /^CSV line 2, column 3: "" is not a number$/],
    ['1,2,3,4\n5,6,7', 400, /^CSV line 2 has 3 columns; line 1 has 4$/],
    ['1,2,3\n4,5,6', 400, /dimension 1 must be 4/],
    ['\n\n', 400, /^the CSV body has no rows$/],
    ['1,2,3,4\n1,2,3,4\n1,2,3,4\n1,2,3,4', 413, /^the CSV body has more than 3 rows/],
  ])('CSV %j is %d', async (body, status, message) => {
    expectError(await invoke(body, { 'content-type': 'text/csv' }), status, message);
  });

  it('without a ready model, /ping and /invocations are 503', async () => {
    const empty = service({ sagemaker: true });
    expectError(await call(empty, 'GET', '/ping'), 503, /^no model is configured$/);
    expectError(
      await call(empty, 'POST', '/invocations', Buffer.from('1,2,3,4'), { 'content-type': 'text/csv' }),
      503,
      /^no model is configured$/,
    );
  });
});

describe('failures', () => {
  it('an unexpected error is a 500 with a generic message, and the details go to telemetry only', async () => {
    const failures: Parameters<NonNullable<Telemetry['requestFailed']>>[0][] = [];
    const s = service({
      telemetry: {
        inference: () => {
          throw new Error('metrics sink exploded: secret-token-123');
        },
        requestFailed: (e) => failures.push(e),
      },
    });
    await s.load({ location: mlpPath });
    const res = await call(s, 'POST', '/v2/models/mlp/infer', jsonBody({ instances: ROWS }));
    expectError(res, 500, /^internal error while serving the request$/);
    expect(text(res)).not.toContain('secret');
    expect(failures).toEqual([
      {
        model: 'mlp',
        kind: 'Internal',
        status: 500,
        message: 'internal error while serving the request',
        error: expect.objectContaining({ message: 'metrics sink exploded: secret-token-123' }) as unknown,
      },
    ]);
  });

  it('reports failed requests with their kind and status', async () => {
    await call(svc, 'POST', '/v2/models/addmul/infer', jsonBody({ inputs: [] }));
    await call(svc, 'GET', '/v2/models/nope');
    await call(svc, 'GET', '/v2/models/addmul/infer');
    expect(rec.events.requestFailed.map((e) => [e.model, e.kind, e.status])).toEqual([
      ['addmul', 'BadRequest', 400],
      ['nope', 'NotFound', 404],
      ['addmul', 'MethodNotAllowed', 405],
    ]);
  });

  it('no bad request ever gets a 5xx, however the body is mangled', async () => {
    const rand = seededRandom(20261121);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const noise = '{}[]",:.-0123456789eE truefalsnul\\%\u0000\u00ff';
    const seeds: { path: string; body: Buffer; headers: Record<string, string> }[] = [];
    const v2 = jsonBody(abRequest({ id: 'x', outputs: [{ name: 'sum' }] }));
    const a = leBytes(Float32Array.from(A));
    const bin = binaryBody(
      {
        inputs: [
          { name: 'a', shape: [2, 3], datatype: 'FP32', parameters: { binary_data_size: 24 } },
          { name: 'b', shape: [2, 3], datatype: 'FP32', data: B },
        ],
      },
      [a],
    );
    const mixedBody = jsonBody({
      inputs: [
        { name: 'ids', shape: [2], datatype: 'INT64', data: ['9007199254740993', 1] },
        { name: 'mask', shape: [2], datatype: 'BOOL', data: [true, false] },
        { name: 'text', shape: [2], datatype: 'BYTES', data: ['a', 'b'] },
      ],
    });
    const bases: { path: string; body: Buffer; headers: Record<string, string> }[] = [
      { path: '/v2/models/addmul/infer', body: v2, headers: {} },
      {
        path: '/v2/models/addmul/infer',
        body: bin.body,
        headers: { 'inference-header-content-length': bin.headerLength },
      },
      { path: '/v2/models/mlp/infer', body: jsonBody({ instances: ROWS }), headers: {} },
      { path: '/v2/models/mixed/infer', body: mixedBody, headers: {} },
      {
        path: '/v2/models/gather/infer',
        body: jsonBody({ inputs: [{ name: 'idx', shape: [2], datatype: 'INT64', data: [1, 2] }] }),
        headers: {},
      },
    ];
    for (let i = 0; i < 400; i++) {
      const base = pick(bases);
      const bytes = Buffer.from(base.body);
      const headers: Record<string, string> = { ...base.headers };
      const edits = 1 + Math.floor(rand() * 3);
      let body = bytes;
      for (let e = 0; e < edits; e++) {
        const at = Math.floor(rand() * body.length);
        const op = Math.floor(rand() * 5);
        if (op === 0) body = body.subarray(0, at);
        else if (op === 1)
          body = Buffer.concat([
            body.subarray(0, at),
            Buffer.from(pick([...noise]), 'latin1'),
            body.subarray(at + 1),
          ]);
        else if (op === 2)
          body = Buffer.concat([
            body.subarray(0, at),
            Buffer.from(pick([...noise]), 'latin1'),
            body.subarray(at),
          ]);
        else if (op === 3) body = Buffer.concat([body.subarray(0, at), body.subarray(at + 1)]);
        else
          headers['inference-header-content-length'] = pick([
            '0',
            '1',
            String(at),
            '-5',
            'x',
            String(body.length + 1),
            '',
          ]);
      }
      seeds.push({ path: base.path, body, headers });
    }
    for (const p of [
      '/v2/models/%',
      '/v2/models/%C0%AF',
      '/v2/models//infer',
      '/v2/models/a%2Fb/ready',
      '//',
      '/v2/models/addmul/versions//ready',
    ]) {
      seeds.push({ path: p, body: EMPTY, headers: {} });
    }
    const results = await Promise.all(
      seeds.map(async (r) => {
        const res = await svc.handle({
          method: r.path.endsWith('infer') ? 'POST' : 'GET',
          path: r.path,
          headers: r.headers,
          body: r.body,
        });
        return {
          status: res.status,
          path: r.path,
          body: r.body.toString('latin1'),
          headers: r.headers,
          answer: text(res),
        };
      }),
    );
    expect(results.filter((r) => r.status >= 500)).toEqual([]);
    // The mangling does reach validation: most are 400s, and every error is a JSON {"error"}.
    expect(results.filter((r) => r.status === 400).length).toBeGreaterThan(200);
    for (const r of results.filter((x) => x.status !== 200)) {
      expect(Object.keys(JSON.parse(r.answer) as object)).toEqual(['error']);
    }
  });
});
