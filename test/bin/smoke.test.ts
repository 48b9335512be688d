/**
 * `mdk smoke` against the real local server (lambda/server/server.ts, what `mdk serve` runs): iris passes;
 * a model with other weights fails with its differences; a server that never gets ready fails within
 * --wait. What the server receives is read from its own request events: the API key, and a SigV4
 * signature for execute-api that the test recomputes. --api-key-id resolves through moto's API Gateway.
 */
import * as fs from 'node:fs';
import type * as http from 'node:http';
import * as path from 'node:path';
import { APIGatewayClient, CreateApiKeyCommand } from '@aws-sdk/client-api-gateway';
import { Sha256 } from '@smithy/core/checksum';
import { SignatureV4 } from '@smithy/signature-v4';
import { regionOfUrl, smokeCommand } from '../../bin/cli/smoke';
import { InferenceService } from '../../lambda/core/service';
import { startServer, type RunningServer } from '../../lambda/server/server';
import { startMoto, type MotoServer } from '../support/moto';
import { IRIS_DIR, writeIrisVariant } from '../support/iris-variants';

interface Served {
  readonly server: RunningServer;
  readonly service: InferenceService;
  /** Every request the server received: method, path, headers, body. */
  readonly seen: { method: string; url: string; headers: http.IncomingHttpHeaders; body: string }[];
}

const running: Served[] = [];
const roots: string[] = [];

async function serve(dir: string): Promise<Served> {
  const service = new InferenceService({ session: { intraOpNumThreads: 1 } });
  await service.load({ location: dir });
  const server = await startServer(service, { port: 0 });
  const seen: Served['seen'] = [];
  server.server.on('request', (req: http.IncomingMessage) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () =>
      seen.push({
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      }),
    );
  });
  const served = { server, service, seen };
  running.push(served);
  return served;
}

/** Runs the command in this process and keeps what it printed. */
async function smoke(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await smokeCommand(args, { out: (t) => (out += t), err: (t) => (err += t) });
  return { code, out, err };
}

afterAll(async () => {
  for (const s of running) {
    await s.server.close();
    await s.service.close();
  }
  for (const r of roots) fs.rmSync(r, { recursive: true, force: true });
});

describe('mdk smoke against the local server', () => {
  let iris: Served;
  beforeAll(async () => {
    iris = await serve(IRIS_DIR);
  });

  test('iris answers its sample: exit 0, after checking readiness', async () => {
    const run = await smoke(['--url', iris.server.url, '--model', IRIS_DIR]);
    expect(run).toEqual({
      code: 0,
      out: `smoke test passed: ${iris.server.url}/ is ready, and iris 1.1.0 answered its sample as expected\n`,
      err: '',
    });
    const paths = iris.seen.slice(-2).map((r) => `${r.method} ${r.url}`);
    expect(paths).toEqual(['GET /v2/health/ready', 'POST /v2/models/iris/infer']);
    expect(JSON.parse(iris.seen.at(-1)?.body ?? '')).toEqual(
      (
        JSON.parse(fs.readFileSync(path.join(IRIS_DIR, 'model.json'), 'utf8')) as {
          sample: { request: unknown };
        }
      ).sample.request,
    );
  });

  test('a model with other weights: exit 1, with the differences', async () => {
    const variant = writeIrisVariant();
    roots.push(variant.root);
    const other = await serve(variant.dir);
    const run = await smoke(['--url', `${other.server.url}/`, '--model', IRIS_DIR, '--wait', '5']);
    expect(run.code).toBe(1);
    expect(run.out).toContain(`smoke test FAILED: ${other.server.url}/v2/models/iris/infer (iris 1.1.0):\n`);
    expect(run.out).toContain(`  output 'probabilities'[1]: expected 0.9706579, got 0.002466524\n`);
    expect(run.out).toContain(`  output 'label'[0]: expected 1, got 2\n`);
  });

  test('a server that never gets ready: exit 1 within --wait, with its last answer', async () => {
    // model.onnx is not ONNX: the server runs but answers 503 on readiness for good.
    const broken = writeIrisVariant(Buffer.from('not onnx'));
    roots.push(broken.root);
    const down = await serve(broken.dir);
    await expect(smoke(['--url', down.server.url, '--model', IRIS_DIR, '--wait', '2'])).rejects.toMatchObject(
      {
        exitCode: 1,
        message: expect.stringMatching(
          new RegExp(
            `^${down.server.url}/v2/health/ready was not ready within 2 s; the last answer was HTTP 503: .*failed to load`,
          ),
        ) as string,
      },
    );
    const polls = down.seen.filter((r) => r.url === '/v2/health/ready');
    expect(polls.length).toBeGreaterThanOrEqual(2);
    expect(down.seen.some((r) => r.method === 'POST')).toBe(false);
  });

  test('nothing listening: progress on stderr while it waits, then a clear failure', async () => {
    const closed = await serve(IRIS_DIR);
    const url = closed.server.url;
    await closed.server.close();
    let err = '';
    const run = smokeCommand(['--url', url, '--model', IRIS_DIR, '--wait', '2'], {
      out: () => undefined,
      err: (t) => (err += t),
    });
    await expect(run).rejects.toThrow(/was not ready within 2 s; the last answer was ECONNREFUSED/);
    expect(err).toMatch(new RegExp(`^waiting for ${url}/v2/health/ready \\(0/2 s\\): ECONNREFUSED\\n`));
  });

  test('--api-key is sent as x-api-key on every request', async () => {
    const before = iris.seen.length;
    expect((await smoke(['--url', iris.server.url, '--model', IRIS_DIR, '--api-key', 'k-123'])).code).toBe(0);
    const sent = iris.seen.slice(before);
    expect(sent).toHaveLength(2);
    expect(sent.map((r) => r.headers['x-api-key'])).toEqual(['k-123', 'k-123']);
  });

  test('--sign: a SigV4 Authorization for execute-api in the given region, that verifies', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, { AWS_ACCESS_KEY_ID: 'AKIDTEST', AWS_SECRET_ACCESS_KEY: 'secret-test' });
    delete process.env.AWS_SESSION_TOKEN;
    delete process.env.AWS_PROFILE;
    try {
      const before = iris.seen.length;
      const run = await smoke([
        '--url',
        iris.server.url,
        '--model',
        IRIS_DIR,
        '--sign',
        '--region',
        'eu-west-1',
      ]);
      expect(run.code).toBe(0);
      const sent = iris.seen.slice(before);
      expect(sent).toHaveLength(2);
      for (const req of sent) {
        const auth = String(req.headers.authorization);
        const date = String(req.headers['x-amz-date']);
        expect(auth).toMatch(
          new RegExp(
            `^AWS4-HMAC-SHA256 Credential=AKIDTEST/${date.slice(0, 8)}/eu-west-1/execute-api/aws4_request, SignedHeaders=[a-z0-9;-]*host[a-z0-9;-]*, Signature=[0-9a-f]{64}$`,
          ),
        );
        // Sign what the server received again (with the SDK's own sha256), same key and time: they must agree.
        const signedHeaders = /SignedHeaders=([^,]+)/.exec(auth)?.[1]?.split(';') ?? [];
        const headers = Object.fromEntries(signedHeaders.map((h) => [h, String(req.headers[h])]));
        const url = new URL(req.url, iris.server.url);
        const verifier = new SignatureV4({
          service: 'execute-api',
          region: 'eu-west-1',
          credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'secret-test' },
          sha256: Sha256,
        });
        const resigned = await verifier.sign(
          {
            method: req.method,
            protocol: url.protocol,
            hostname: url.hostname,
            port: Number(url.port),
            path: url.pathname,
            query: {},
            headers,
            body: req.method === 'POST' ? req.body : undefined,
          },
          {
            signingDate: new Date(
              `${date.slice(0, 4)}-${date.slice(4, 6)}-${date.slice(6, 8)}T${date.slice(9, 11)}:${date.slice(11, 13)}:${date.slice(13, 15)}Z`,
            ),
          },
        );
        expect(resigned.headers.authorization).toBe(auth);
      }
    } finally {
      process.env = saved;
    }
  });

  test('the region comes from an execute-api URL; usage errors are exit 2', async () => {
    expect(regionOfUrl(new URL('https://abc123.execute-api.eu-west-1.amazonaws.com/api/'))).toBe('eu-west-1');
    expect(regionOfUrl(new URL('http://127.0.0.1:8080/'))).toBeUndefined();
    await expect(smoke(['--model', IRIS_DIR])).rejects.toMatchObject({
      exitCode: 2,
      message: '--url is required',
    });
    await expect(smoke(['--url', 'ftp://x/', '--model', IRIS_DIR])).rejects.toMatchObject({
      exitCode: 2,
      message: '--url must be an http(s) URL, got "ftp://x/"',
    });
    await expect(
      smoke(['--url', iris.server.url, '--model', IRIS_DIR, '--api-key', 'a', '--api-key-id', 'b']),
    ).rejects.toMatchObject({ exitCode: 2, message: 'give --api-key or --api-key-id, not both' });
    const saved = { ...process.env };
    delete process.env.AWS_REGION;
    delete process.env.AWS_DEFAULT_REGION;
    try {
      await expect(smoke(['--url', iris.server.url, '--model', IRIS_DIR, '--sign'])).rejects.toMatchObject({
        exitCode: 2,
        message: '--sign needs a region: give --region, or an execute-api URL, or set AWS_REGION',
      });
    } finally {
      process.env = saved;
    }
    await expect(smoke(['--url', iris.server.url, '--model', '/nonexistent'])).rejects.toMatchObject({
      exitCode: 1,
      message: expect.stringMatching(/does not exist/) as string,
    });
  });
});

describe('mdk smoke --api-key-id', () => {
  let moto: MotoServer;
  beforeAll(async () => {
    moto = await startMoto();
  });
  afterAll(async () => {
    await moto.stop();
  });

  test("looks the key's value up with GetApiKey and sends it", async () => {
    const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
    const apigw = new APIGatewayClient({ region: 'us-east-1', endpoint: moto.endpoint, credentials });
    const key = await apigw.send(
      new CreateApiKeyCommand({ name: 'smoke', value: 'abcdefghij0123456789xyz', enabled: true }),
    );
    apigw.destroy();
    const iris = running[0] as Served;
    const saved = { ...process.env };
    Object.assign(process.env, {
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
    });
    try {
      const before = iris.seen.length;
      const run = await smoke([
        '--url',
        iris.server.url,
        '--model',
        IRIS_DIR,
        '--api-key-id',
        key.id ?? '',
        '--region',
        'us-east-1',
      ]);
      expect(run.code).toBe(0);
      expect(iris.seen.slice(before).map((r) => r.headers['x-api-key'])).toEqual([
        'abcdefghij0123456789xyz',
        'abcdefghij0123456789xyz',
      ]);
      await expect(
        smoke([
          '--url',
          iris.server.url,
          '--model',
          IRIS_DIR,
          '--api-key-id',
          'nosuchkey',
          '--region',
          'us-east-1',
        ]),
      ).rejects.toThrow(/^cannot read API key nosuchkey: NotFoundException/);
    } finally {
      process.env = saved;
    }
  });
});
