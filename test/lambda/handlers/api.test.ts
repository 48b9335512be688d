import * as fs from 'node:fs';
import * as path from 'node:path';
import type { APIGatewayProxyEvent, APIGatewayProxyEventV2, APIGatewayProxyResult } from 'aws-lambda';
import * as ort from 'onnxruntime-node';
import type { ModelManifest } from '../../../lambda/core/types';
import { copyModel } from '../../support/cdk';

const IRIS = path.join(__dirname, '..', '..', '..', 'models', 'iris');
const manifest = JSON.parse(fs.readFileSync(path.join(IRIS, 'model.json'), 'utf8')) as ModelManifest;

type Api = typeof import('../../../lambda/handlers/api');

/** Imports a fresh copy of the handler module with the given environment, as a Lambda init would. */
async function loadHandler(env: Record<string, string>): Promise<Api> {
  const saved = { ...process.env };
  Object.assign(process.env, env);
  let api: Api | undefined;
  jest.isolateModules(() => {
    api = jest.requireActual<Api>('../../../lambda/handlers/api');
  });
  process.env = saved;
  if (!api) throw new Error('handler module did not load');
  await api.ready;
  return api;
}

function restEvent(
  method: string,
  route: string,
  body?: string | Buffer,
  headers: Record<string, string> = {},
) {
  const binary = Buffer.isBuffer(body);
  return {
    resource: '/{proxy+}',
    path: route,
    httpMethod: method,
    headers,
    multiValueHeaders: {},
    queryStringParameters: null,
    multiValueQueryStringParameters: null,
    pathParameters: null,
    stageVariables: null,
    requestContext: {} as APIGatewayProxyEvent['requestContext'],
    body: body === undefined ? null : binary ? body.toString('base64') : body,
    isBase64Encoded: binary,
  } satisfies APIGatewayProxyEvent;
}

function httpApiEvent(method: string, rawPath: string, stage: string, body?: string): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath,
    rawQueryString: '',
    headers: { 'Content-Type': 'application/json' },
    requestContext: {
      stage,
      http: { method, path: rawPath, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'jest' },
    } as APIGatewayProxyEventV2['requestContext'],
    body,
    isBase64Encoded: false,
  };
}

const parse = (r: { body?: string }) => JSON.parse(r.body ?? '') as Record<string, unknown>;

describe('api handler', () => {
  let api: Api;
  let stdout: string[];
  let spy: jest.SpyInstance;
  let errSpy: jest.SpyInstance;

  beforeAll(async () => {
    stdout = [];
    spy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    });
    // Warnings (rejected requests) go to stderr; keep them out of the test output.
    errSpy = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    api = await loadHandler({
      MODEL_URI: IRIS,
      MAX_PAYLOAD_BYTES: String(64 * 1024),
      MAX_BATCH: '100',
      POWERTOOLS_LOG_LEVEL: 'DEBUG',
    });
  });

  afterAll(() => {
    spy.mockRestore();
    errSpy.mockRestore();
  });

  it('loads the model during init, before any request', () => {
    const loaded = stdout
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.message === 'model loaded');
    expect(loaded).toMatchObject({ model: 'iris', version: '1.1.0', sha256: manifest.sha256 });
    expect(stdout.join('')).toContain('"ModelLoadTime"');
  });

  it('answers the manifest sample over a REST API event with the expected response', async () => {
    const sample = manifest.sample;
    if (!sample) throw new Error('iris has no sample');
    const res = (await api.handler(
      restEvent('POST', '/v2/models/iris/infer', JSON.stringify(sample.request)),
    )) as APIGatewayProxyResult;
    expect(res.statusCode).toBe(200);
    expect(parse(res)).toEqual(sample.response);
  });

  it('answers metadata over an HTTP API event with a stage prefix', async () => {
    const res = (await api.handler(
      httpApiEvent('GET', '/prod/v2/models/iris', 'prod'),
    )) as APIGatewayProxyResult;
    expect(res.statusCode).toBe(200);
    expect(parse(res)).toMatchObject({
      name: 'iris',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 4] }],
    });
  });

  it('reads and writes the binary tensor extension as base64', async () => {
    const rows = Float32Array.from([5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]);
    const header = Buffer.from(
      JSON.stringify({
        inputs: [
          {
            name: 'input',
            shape: [2, 4],
            datatype: 'FP32',
            parameters: { binary_data_size: rows.byteLength },
          },
        ],
        outputs: [{ name: 'probabilities', parameters: { binary_data: true } }, { name: 'label' }],
      }),
    );
    const body = Buffer.concat([header, Buffer.from(rows.buffer)]);
    const res = (await api.handler(
      restEvent('POST', '/v2/models/iris/infer', body, {
        'Inference-Header-Content-Length': String(header.length),
        'Content-Type': 'application/octet-stream',
      }),
    )) as APIGatewayProxyResult;
    expect(res.statusCode).toBe(200);
    expect(res.isBase64Encoded).toBe(true);
    const raw = Buffer.from(res.body, 'base64');
    const headerLength = Number(res.headers?.['inference-header-content-length']);
    const out = JSON.parse(raw.subarray(0, headerLength).toString('utf8')) as {
      outputs: { name: string; parameters?: { binary_data_size: number }; data?: number[] }[];
    };
    expect(out.outputs[0]?.parameters?.binary_data_size).toBe(2 * 3 * 4);
    const probs = new Float32Array(
      raw.buffer.slice(raw.byteOffset + headerLength, raw.byteOffset + raw.length),
    );

    const session = await ort.InferenceSession.create(path.join(IRIS, 'model.onnx'));
    const direct = await session.run({ input: new ort.Tensor('float32', rows, [2, 4]) });
    expect(Array.from(probs)).toEqual(Array.from(direct.probabilities?.data as Float32Array));
    expect(out.outputs[1]?.data).toEqual(Array.from(direct.label?.data as BigInt64Array, Number));
    await session.release();
  });

  it('turns bad input into 4xx answers with a message, never a 5xx', async () => {
    const input = (shape: number[], data: unknown, datatype = 'FP32') =>
      JSON.stringify({ inputs: [{ name: 'input', shape, datatype, data }] });
    const cases: [string, string, number, RegExp][] = [
      ['/v2/models/iris/infer', '{"inputs": [', 400, /not valid JSON/],
      [
        '/v2/models/iris/infer',
        JSON.stringify({ inputs: [{ name: 'x', shape: [1], datatype: 'FP32', data: [1] }] }),
        400,
        /unknown input 'x'/,
      ],
      [
        '/v2/models/iris/infer',
        input([1, 4], [1, 2, 3, 4], 'INT32'),
        400,
        /datatype INT32 but the model expects FP32/,
      ],
      ['/v2/models/iris/infer', input([1, 3], [1, 2, 3]), 400, /dimension 1 must be 4/],
      [
        '/v2/models/iris/infer',
        input([101, 4], new Array(404).fill(1)),
        413,
        /batch of 101 rows; the limit is 100/,
      ],
      ['/v2/models/iris/infer', input([1, 4], new Array(20000).fill(1.2345)), 413, /limit is 65536/],
      ['/v2/models/iris/infer', input([1, 4], [1, 2, 3]), 400, /has 3 values but shape \[1, 4\] needs 4/],
      ['/v2/models/nope/infer', input([1, 4], [1, 2, 3, 4]), 404, /unknown model 'nope'/],
    ];
    for (const [route, body, status, message] of cases) {
      const res = (await api.handler(restEvent('POST', route, body))) as APIGatewayProxyResult;
      expect([body.slice(0, 60), res.statusCode]).toEqual([body.slice(0, 60), status]);
      expect(parse(res).error).toMatch(message);
    }
  });

  it('logs requests and metrics without payloads', async () => {
    stdout.length = 0;
    const secret = [7.77777, 3.33333, 1.11111, 0.55555];
    const res = (await api.handler(
      restEvent(
        'POST',
        '/v2/models/iris/infer',
        JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: secret }] }),
      ),
    )) as APIGatewayProxyResult;
    expect(res.statusCode).toBe(200);
    const logged = stdout.join('');
    expect(logged).toContain('"InferenceLatency"');
    expect(logged).toContain('"BatchSize"');
    expect(logged).toMatch(/"message":"request".*"status":200/);
    expect(logged).not.toContain('7.77777');
  });
});

describe('api handler whose model fails its sha256 check', () => {
  it('refuses to serve and says why', async () => {
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const errSpy = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const api = await loadHandler({ MODEL_URI: IRIS, MODEL_SHA256: 'a'.repeat(64) });
    const ready = (await api.handler(restEvent('GET', '/v2/health/ready'))) as APIGatewayProxyResult;
    expect(ready.statusCode).toBe(503);
    expect(parse(ready).error).toMatch(/sha256 .* but the expected sha256 is a{64}.*refusing to serve/);
    const infer = (await api.handler(
      restEvent('POST', '/v2/models/iris/infer', JSON.stringify(manifest.sample?.request)),
    )) as APIGatewayProxyResult;
    expect(infer.statusCode).toBe(503);
    expect(parse(infer).error).toMatch(/not ready/);
    spy.mockRestore();
    errSpy.mockRestore();
  });
});

describe('api handler of an A/B variant', () => {
  it('serves its own variant, and the other one when X-Model-Variant pins it', async () => {
    const spy = jest.spyOn(process.stdout, 'write').mockImplementation(() => true);
    const errSpy = jest.spyOn(process.stderr, 'write').mockImplementation(() => true);
    const challenger = copyModel({ manifest: (m) => (m.version = '1.2.0') });
    try {
      const api = await loadHandler({
        MODEL_URI: challenger,
        MODEL_VARIANT: 'challenger',
        MODEL_VARIANTS: JSON.stringify({ primary: { uri: IRIS }, challenger: { uri: challenger } }),
      });
      const body = JSON.stringify(manifest.sample?.request);
      const own = (await api.handler(
        restEvent('POST', '/v2/models/iris/infer', body),
      )) as APIGatewayProxyResult;
      expect(own.statusCode).toBe(200);
      expect(own.headers?.['x-model-variant']).toBe('challenger');
      expect(parse(own).model_version).toBe('1.2.0');
      const pinned = (await api.handler(
        restEvent('POST', '/v2/models/iris/infer', body, { 'X-Model-Variant': 'primary' }),
      )) as APIGatewayProxyResult;
      expect(pinned.statusCode).toBe(200);
      expect(pinned.headers?.['x-model-variant']).toBe('primary');
      expect(parse(pinned)).toEqual(manifest.sample?.response);
    } finally {
      fs.rmSync(challenger, { recursive: true, force: true });
      spy.mockRestore();
      errSpy.mockRestore();
    }
  });
});
