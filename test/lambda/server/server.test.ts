import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { InferenceService } from '../../../lambda/core/service';
import { startServer, type AccessLogEntry, type RunningServer } from '../../../lambda/server/server';
import { mlpModel, removeDir, writeModel } from '../../fixtures/models';

const IRIS = path.join(__dirname, '..', '..', '..', 'models', 'iris');

interface Reply {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
  reused: boolean;
}

function request(
  url: string,
  opts: {
    method?: string;
    /** An array is sent chunked, with no content-length. */
    body?: Buffer | string | Buffer[];
    headers?: Record<string, string>;
    agent?: http.Agent;
  } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: opts.method ?? 'GET', headers: opts.headers, agent: opts.agent },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks),
            reused: req.reusedSocket,
          }),
        );
      },
    );
    req.on('error', reject);
    if (Array.isArray(opts.body)) {
      for (const chunk of opts.body) req.write(chunk);
      req.end();
    } else req.end(opts.body);
  });
}

const json = (r: Reply): Record<string, unknown> =>
  JSON.parse(r.body.toString('utf8')) as Record<string, unknown>;

describe('startServer', () => {
  let service: InferenceService;
  let server: RunningServer;
  const log: AccessLogEntry[] = [];

  beforeAll(async () => {
    service = new InferenceService({ sagemaker: true, limits: { maxPayloadBytes: 64 * 1024 } });
    await service.load({ location: IRIS });
    server = await startServer(service, { port: 0, accessLog: (e) => log.push(e) });
  });

  afterAll(async () => {
    await server.close();
    await service.close();
  });

  it('answers the V2 routes with the same results as a direct onnxruntime run', async () => {
    expect((await request(`${server.url}/v2/health/live`)).status).toBe(200);
    expect((await request(`${server.url}/v2/health/ready`)).status).toBe(200);
    const meta = await request(`${server.url}/v2/models/iris`);
    expect(json(meta)).toMatchObject({ name: 'iris', versions: ['1.1.0'] });

    const data = [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3];
    const res = await request(`${server.url}/v2/models/iris/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data }] }),
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('application/json');

    const session = await ort.InferenceSession.create(path.join(IRIS, 'model.onnx'));
    const direct = await session.run({ input: new ort.Tensor('float32', Float32Array.from(data), [2, 4]) });
    const outputs = json(res).outputs as { name: string; data: number[] }[];
    expect(outputs[0]?.data).toEqual(Array.from(direct.probabilities?.data as Float32Array));
    expect(outputs[1]?.data).toEqual(Array.from(direct.label?.data as BigInt64Array, Number));
    await session.release();
  });

  it('reuses keep-alive connections', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const first = await request(`${server.url}/v2/health/live`, { agent });
    const second = await request(`${server.url}/v2/health/live`, { agent });
    agent.destroy();
    expect(first.reused).toBe(false);
    expect(second.reused).toBe(true);
  });

  it('rejects a body over the limit with 413, declared or streamed', async () => {
    const big = Buffer.alloc(100 * 1024, 0x20);
    const declared = await request(`${server.url}/v2/models/iris/infer`, { method: 'POST', body: big });
    expect(declared.status).toBe(413);
    expect(json(declared).error).toMatch(/larger than the limit of 65536 bytes/);

    // Chunked, with no content-length: the limit is enforced while reading.
    const streamed = await request(`${server.url}/v2/models/iris/infer`, {
      method: 'POST',
      body: [big.subarray(0, 40 * 1024), big.subarray(40 * 1024)],
    });
    expect(streamed.status).toBe(413);
    expect(streamed.headers.connection).toBe('close');
  });

  it('answers bad requests with 4xx JSON errors and keeps serving', async () => {
    const cases: [string, string, string | undefined, number, RegExp][] = [
      ['POST', '/v2/models/iris/infer', '{not json', 400, /not valid JSON/],
      ['POST', '/v2/models/unknown/infer', '{}', 404, /unknown model 'unknown'/],
      ['GET', '/v2/models/iris/infer', undefined, 405, /use POST/],
      ['GET', '/nowhere', undefined, 404, /no route for GET \/nowhere/],
      [
        'POST',
        '/v2/models/iris/infer',
        JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP64', data: [1, 2, 3, 4] }] }),
        400,
        /datatype FP64 but the model expects FP32/,
      ],
    ];
    for (const [method, route, body, status, message] of cases) {
      const res = await request(`${server.url}${route}`, { method, body });
      expect([route, res.status]).toEqual([route, status]);
      expect(json(res).error).toMatch(message);
    }
    expect((await request(`${server.url}/v2/health/ready`)).status).toBe(200);
  });

  it('serves the SageMaker routes', async () => {
    expect((await request(`${server.url}/ping`)).status).toBe(200);
    const res = await request(`${server.url}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'text/csv' },
      body: '5.1,3.5,1.4,0.2\n',
    });
    expect(res.status).toBe(200);
    expect((json(res).predictions as unknown[]).length).toBe(1);
  });

  it('writes an access log line per request without bodies', async () => {
    log.length = 0;
    await request(`${server.url}/v2/models/iris/infer`, {
      method: 'POST',
      body: JSON.stringify({
        inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [9, 8, 7, 6] }],
      }),
    });
    expect(log).toHaveLength(1);
    expect(log[0]).toMatchObject({ method: 'POST', path: '/v2/models/iris/infer', status: 200 });
    expect(JSON.stringify(log)).not.toContain('9,8,7,6');
  });
});

describe('startServer with dynamic batching', () => {
  it('answers concurrent requests correctly, each through the batcher', async () => {
    const service = new InferenceService({ batching: { maxBatchSize: 64 } });
    await service.load({ location: IRIS });
    const server = await startServer(service, { port: 0 });
    const session = await ort.InferenceSession.create(path.join(IRIS, 'model.onnx'));
    try {
      const rows = Array.from({ length: 24 }, (_, i) => [4 + (i % 7) / 2, 3, 1 + (i % 11) / 2, (i % 5) / 2]);
      const replies = await Promise.all(
        rows.map((r) =>
          request(`${server.url}/v2/models/iris/infer`, {
            method: 'POST',
            body: JSON.stringify({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: r }] }),
          }),
        ),
      );
      for (const [i, reply] of replies.entries()) {
        expect(reply.status).toBe(200);
        const input = new ort.Tensor('float32', Float32Array.from(rows[i] ?? []), [1, 4]);
        const direct = await session.run({ input });
        const outputs = json(reply).outputs as { name: string; data: number[] }[];
        expect(outputs[0]?.data).toEqual(Array.from(direct.probabilities?.data as Float32Array));
      }
      // How many share a run depends on how the requests arrive; the service test pins the joining itself.
      expect(service.batchingStats().iris?.requests).toBe(rows.length);
    } finally {
      await session.release();
      await server.close();
      await service.close();
    }
  });
});

describe('graceful shutdown', () => {
  it('finishes a request that is in flight when shutdown starts, then refuses new connections', async () => {
    const state: { server?: RunningServer; closing?: Promise<void> } = {};
    // Shutdown starts while the request is inside the service, so it is truly in flight.
    class ClosingService extends InferenceService {
      override async handle(req: Parameters<InferenceService['handle']>[0]) {
        state.closing ??= state.server?.close();
        await new Promise((r) => setTimeout(r, 50));
        return super.handle(req);
      }
    }
    const written = writeModel(mlpModel(), { folderName: 'mlp' });
    const service = new ClosingService();
    await service.load({ location: written.dir });
    const server = await startServer(service, { port: 0 });
    state.server = server;
    const body = JSON.stringify({
      inputs: [{ name: 'input', shape: [2, 4], datatype: 'FP32', data: new Array<number>(8).fill(0.5) }],
    });
    const noReuse = new http.Agent({ keepAlive: false });
    const res = await request(`${server.url}/v2/models/mlp/infer`, { method: 'POST', body, agent: noReuse });
    expect(state.closing).toBeDefined();
    await state.closing;
    expect(res.status).toBe(200);
    expect(res.headers.connection).toBe('close');
    expect((json(res).outputs as { shape: number[] }[])[0]?.shape).toEqual([2, 3]);
    await expect(request(`${server.url}/v2/health/live`, { agent: noReuse })).rejects.toThrow(/ECONNREFUSED/);
    await service.close();
    removeDir(written.root);
  });
});

/** A service whose infer requests wait at a gate the test opens, so they are truly in flight. */
class GatedService extends InferenceService {
  private open!: () => void;
  readonly gate = new Promise<void>((resolve) => (this.open = resolve));
  entered = 0;
  release(): void {
    this.open();
  }
  override async handle(req: Parameters<InferenceService['handle']>[0]) {
    if (req.path.endsWith('/infer')) {
      this.entered++;
      await this.gate;
    }
    return super.handle(req);
  }
}

/** Resolves once `check` holds, looking again after each turn of the event loop (no timers). */
async function until(check: () => boolean): Promise<void> {
  while (!check()) await new Promise((r) => setImmediate(r));
}

const IRIS_ROW = JSON.stringify({
  inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }],
});

describe('back-pressure', () => {
  it('refuses requests past maxInFlight with 503 and Retry-After, still answers health checks, and recovers', async () => {
    const service = new GatedService({ sagemaker: true });
    await service.load({ location: IRIS });
    const server = await startServer(service, { port: 0, maxInFlight: 3 });
    try {
      const held = [1, 2, 3].map(() =>
        request(`${server.url}/v2/models/iris/infer`, { method: 'POST', body: IRIS_ROW }),
      );
      await until(() => service.entered === 3);
      expect(server.inFlight()).toBe(3);

      const refused = await request(`${server.url}/v2/models/iris/infer`, { method: 'POST', body: IRIS_ROW });
      expect(refused.status).toBe(503);
      expect(refused.headers['retry-after']).toBe('1');
      expect(json(refused).error).toMatch(/limit of 3 requests in flight; retry after 1 s/);
      // The refused request never reached the service.
      expect(service.entered).toBe(3);
      expect((await request(`${server.url}/v2/health/ready`)).status).toBe(200);
      expect((await request(`${server.url}/ping`)).status).toBe(200);
      expect((await request(`${server.url}/v2/health/live`)).status).toBe(200);

      service.release();
      for (const r of await Promise.all(held)) expect(r.status).toBe(200);
      await until(() => server.inFlight() === 0);
      const after = await request(`${server.url}/v2/models/iris/infer`, { method: 'POST', body: IRIS_ROW });
      expect(after.status).toBe(200);
    } finally {
      service.release();
      await server.close();
      await service.close();
    }
  });

  it('counts a request until its response is sent, whether it succeeded, failed or was too large', async () => {
    const service = new InferenceService({ limits: { maxPayloadBytes: 1024 } });
    await service.load({ location: IRIS });
    const server = await startServer(service, { port: 0, maxInFlight: 1 });
    try {
      expect(
        (await request(`${server.url}/v2/models/iris/infer`, { method: 'POST', body: '{' })).status,
      ).toBe(400);
      const big = await request(`${server.url}/v2/models/iris/infer`, {
        method: 'POST',
        body: Buffer.alloc(4096, 32),
      });
      expect(big.status).toBe(413);
      await until(() => server.inFlight() === 0);
      expect(
        (await request(`${server.url}/v2/models/nope/infer`, { method: 'POST', body: IRIS_ROW })).status,
      ).toBe(404);
      await until(() => server.inFlight() === 0);
      expect(
        (await request(`${server.url}/v2/models/iris/infer`, { method: 'POST', body: IRIS_ROW })).status,
      ).toBe(200);
    } finally {
      await server.close();
      await service.close();
    }
  });

  it('rejects a bad bound or path prefix when it starts', () => {
    const service = new InferenceService();
    expect(() => startServer(service, { maxInFlight: 0 })).toThrow(
      /maxInFlight must be a positive integer, got 0/,
    );
    expect(() => startServer(service, { pathPrefix: 'prod' })).toThrow(/pathPrefix must look like \/stage/);
    expect(() => startServer(service, { pathPrefix: '/a b' })).toThrow(/pathPrefix/);
  });
});

describe('path prefix', () => {
  it('serves paths with or without the prefix, and nothing that merely starts with its letters', async () => {
    const service = new InferenceService();
    await service.load({ location: IRIS });
    const server = await startServer(service, { port: 0, pathPrefix: '/prod' });
    try {
      const withPrefix = await request(`${server.url}/prod/v2/models/iris/infer`, {
        method: 'POST',
        body: IRIS_ROW,
      });
      expect(withPrefix.status).toBe(200);
      expect(json(withPrefix).model_name).toBe('iris');
      expect((await request(`${server.url}/v2/health/ready`)).status).toBe(200);
      expect((await request(`${server.url}/prod/v2/health/ready`)).status).toBe(200);
      expect((await request(`${server.url}/production/v2/health/ready`)).status).toBe(404);
    } finally {
      await server.close();
      await service.close();
    }
  });
});

describe('readiness while draining', () => {
  it('answers a readiness check that was arriving when shutdown started with 503, so a load balancer moves on', async () => {
    const service = new InferenceService({ sagemaker: true });
    await service.load({ location: IRIS });
    const server = await startServer(service, { port: 0 });
    const seen = new Promise<net.Socket>((r) => server.server.once('connection', r));
    const socket = net.connect(server.port, '127.0.0.1');
    try {
      const serverSide = await seen;
      const arrived = new Promise((r) => serverSide.once('data', r));
      // Half a request: the connection is busy, not idle, so shutdown lets it finish.
      socket.write('GET /ping HTTP/1.1\r\nHost: test\r\n');
      await arrived;
      const reply = new Promise<string>((resolve) => {
        let text = '';
        socket.on('data', (c: Buffer) => (text += c.toString('utf8')));
        socket.on('end', () => resolve(text));
      });
      const closing = server.close();
      socket.write('\r\n');
      const text = await reply;
      expect(text).toMatch(/^HTTP\/1\.1 503/);
      expect(text).toMatch(/connection: close/i);
      expect(text).toMatch(/the server is shutting down/);
      await closing;
    } finally {
      socket.destroy();
      await service.close();
    }
  });
});
