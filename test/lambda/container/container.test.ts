/**
 * The model server image, without Docker (there is no daemon here): the Dockerfile's build step is run as
 * `scripts/stage-container.ts`, and the image's ENTRYPOINT is started from the staged folder with the
 * Dockerfile's own ENV, then tested over HTTP: V2 and SageMaker routes, the queue bound, SIGTERM drain,
 * the HEALTHCHECK, and a model pulled from S3 (moto) with its sha256 checked.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import * as ort from 'onnxruntime-node';
import { MODEL_SERVER_HEALTH_COMMAND } from '../../../lib/container-image';
import { mlpModel, makeTempDir, removeDir, writeModel, type WrittenModel } from '../../fixtures/models';
import { freePort, motoS3Client, putModelFolder, startMoto, type MotoServer } from '../../support/moto';

const ROOT = path.join(__dirname, '..', '..', '..');
const DOCKERFILE = path.join(ROOT, 'lambda', 'container', 'Dockerfile');
const IRIS = path.join(ROOT, 'models', 'iris');
const ARCH = process.arch === 'arm64' ? 'arm64' : 'x64';

interface Dockerfile {
  readonly text: string;
  readonly env: Record<string, string>;
  readonly entrypoint: string[];
  readonly healthcheck: string[];
}

/** The runtime stage's ENV, ENTRYPOINT and HEALTHCHECK command: what the image runs, taken from the file itself. */
function readDockerfile(): Dockerfile {
  const text = fs.readFileSync(DOCKERFILE, 'utf8');
  const runtime = text.slice(text.lastIndexOf('\nFROM '));
  const env: Record<string, string> = {};
  for (const line of runtime.split('\n').filter((l) => l.startsWith('ENV '))) {
    for (const pair of line.slice(4).trim().split(/\s+/)) {
      const [k, v] = pair.split('=');
      if (k && v !== undefined) env[k] = v;
    }
  }
  const exec = (re: RegExp) => {
    const json = re.exec(runtime)?.[1];
    return json ? (JSON.parse(json) as string[]) : [];
  };
  return {
    text,
    env,
    entrypoint: exec(/^ENTRYPOINT (\[.*\])$/m),
    healthcheck: exec(/^HEALTHCHECK .* CMD (\[.*\])$/m),
  };
}

/** The Dockerfile's `/app/...` and `/opt/ml/model` are where a stage folder put them. */
function inStage(stage: string, arg: string): string {
  if (arg.startsWith('/app/')) return path.join(stage, 'app', arg.slice('/app/'.length));
  return arg;
}

function stageImage(outDir: string, modelDir?: string): { code: number | null; stderr: string } {
  const args = ['tsx', 'scripts/stage-container.ts', '--arch', ARCH, '--out', outDir];
  if (modelDir) args.push('--model', modelDir);
  const run = spawnSync('npx', args, { cwd: ROOT, encoding: 'utf8' });
  return { code: run.status, stderr: run.stderr };
}

interface Server {
  readonly child: ChildProcess;
  readonly url: string;
  readonly logs: () => string;
  readonly exited: Promise<number | null>;
}

/** Starts the image's ENTRYPOINT (with SageMaker's `serve` argument) from a staged folder. */
async function startServer(stage: string, env: Record<string, string>): Promise<Server> {
  const docker = readDockerfile();
  const port = await freePort();
  const [command, ...args] = docker.entrypoint.map((a) => inStage(stage, a));
  const child = spawn(command === 'node' ? process.execPath : (command ?? 'node'), [...args, 'serve'], {
    // Only what the image would have: its ENV plus what ECS or SageMaker sets.
    env: { PATH: process.env.PATH, ...docker.env, HOST: '127.0.0.1', PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString('utf8')));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const check = () => {
      if (output.includes('"message":"listening"')) resolve();
      else if (child.exitCode !== null) reject(new Error(`the server exited: ${output}`));
      else setTimeout(check, 20);
    };
    check();
  });
  return { child, url: `http://127.0.0.1:${port}`, logs: () => output, exited };
}

async function stop(server: Server | undefined): Promise<void> {
  if (!server || server.child.exitCode !== null) return;
  server.child.kill('SIGKILL');
  await server.exited;
}

/** Polls readiness until the model is loaded (or the process ends). */
async function ready(server: Server): Promise<void> {
  for (;;) {
    if (server.child.exitCode !== null) throw new Error(`the server exited: ${server.logs()}`);
    const res = await fetch(`${server.url}/v2/health/ready`).catch(() => undefined);
    if (res?.status === 200) return;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/**
 * Probes with a malformed request until the server refuses one for being full, and returns that refusal:
 * while there is room a probe is answered 400 at once, so a 503 means every held request is in flight.
 */
async function untilFull(server: Server): Promise<Response> {
  for (;;) {
    const probe = await post(`${server.url}/v2/models/iris/infer`, '{');
    if (probe.status === 503) return probe;
    expect(probe.status).toBe(400);
  }
}

const post = (url: string, body: unknown, headers: Record<string, string> = {}) =>
  fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

const irisRow = (data: number[]) => ({ inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data }] });

describe('the Dockerfile', () => {
  const docker = readDockerfile();

  it('is multi-stage, runs as the non-root node user, and has a health check and the server as entry point', () => {
    expect(docker.text.match(/^FROM /gm)?.length).toBeGreaterThanOrEqual(3);
    const runtime = docker.text.slice(docker.text.lastIndexOf('\nFROM '));
    expect(runtime).toMatch(/^USER node$/m);
    expect(runtime).toMatch(/^EXPOSE 8080$/m);
    expect(runtime).toMatch(/^HEALTHCHECK .* CMD \["node", "\/app\/healthcheck\.mjs"\]$/m);
    expect(docker.entrypoint).toEqual(['node', '/app/index.mjs']);
    // ECS runs its own health check, not the image's: OnnxContainerService must run the same command.
    expect(['CMD', ...docker.healthcheck]).toEqual(MODEL_SERVER_HEALTH_COMMAND);
    expect(docker.env).toMatchObject({ PORT: '8080', HOST: '0.0.0.0', NODE_ENV: 'production' });
  });

  it('builds from source with the same step the tests run, for the target architecture', () => {
    expect(docker.text).toMatch(
      /^RUN npx tsx scripts\/stage-container\.ts --arch "\$TARGETARCH" --out \/stage/m,
    );
    expect(docker.text).toMatch(/^FROM --platform=\$BUILDPLATFORM .* AS app-source$/m);
    expect(docker.text).toMatch(/^COPY --from=app \/stage\/app \/app$/m);
    expect(docker.text).toMatch(/^COPY --from=app \/stage\/model \/opt\/ml\/model$/m);
  });
});

describe('the staged image', () => {
  let dir: string;
  let stage: string;
  let moto: MotoServer;
  let s3: S3Client;
  let server: Server | undefined;
  let session: ort.InferenceSession;

  beforeAll(async () => {
    dir = makeTempDir('mdk-container-');
    stage = path.join(dir, 'iris');
    const staged = stageImage(stage, IRIS);
    expect(staged.code).toBe(0);
    expect(staged.stderr).toMatch(/server [\d.]+ MB, onnxruntime [\d.]+ MB, model [\d.]+ MB/);
    session = await ort.InferenceSession.create(path.join(IRIS, 'model.onnx'));
    moto = await startMoto();
    s3 = motoS3Client(moto.endpoint);
  }, 120_000);

  afterEach(async () => {
    await stop(server);
    server = undefined;
  });

  afterAll(async () => {
    await session?.release();
    await moto?.stop();
    removeDir(dir);
  });

  it('holds the server, its health check, onnxruntime for this architecture only, and the baked model', () => {
    expect(fs.readdirSync(stage).sort()).toEqual(['Dockerfile', 'app', 'model']);
    expect(fs.readdirSync(path.join(stage, 'app')).sort()).toEqual([
      'healthcheck.mjs',
      'index.mjs',
      'node_modules',
    ]);
    const native = path.join(stage, 'app', 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
    expect(fs.readdirSync(native)).toEqual(['linux']);
    expect(fs.readdirSync(path.join(native, 'linux'))).toEqual([ARCH]);
    expect(fs.readdirSync(path.join(stage, 'model')).sort()).toEqual(['model.json', 'model.onnx']);
    expect(fs.readFileSync(path.join(stage, 'Dockerfile'), 'utf8')).toBe(fs.readFileSync(DOCKERFILE, 'utf8'));
  });

  it('refuses to bake in a model whose manifest does not match it, and an unknown architecture', () => {
    const bad = writeModel(mlpModel(), { manifest: { sha256: 'ab'.repeat(32) } });
    try {
      const run = stageImage(path.join(dir, 'bad'), bad.dir);
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/sha256/);
      const arch = spawnSync(
        'npx',
        ['tsx', 'scripts/stage-container.ts', '--arch', 's390x', '--out', path.join(dir, 'x')],
        {
          cwd: ROOT,
          encoding: 'utf8',
        },
      );
      expect(arch.status).toBe(1);
      expect(arch.stderr).toMatch(/Unsupported architecture "s390x": use arm64 or amd64/);
    } finally {
      removeDir(bad.root);
    }
  });

  it('serves the baked model on the V2 and SageMaker routes, with the same answers as onnxruntime', async () => {
    server = await startServer(stage, { MODEL_URI: path.join(stage, 'model') });
    await ready(server);
    expect(await (await fetch(`${server.url}/v2/health/live`)).json()).toEqual({ live: true });
    const meta = (await (await fetch(`${server.url}/v2/models/iris`)).json()) as {
      name: string;
      inputs: unknown[];
    };
    expect(meta.name).toBe('iris');
    const row = [6.2, 3.4, 5.4, 2.3];
    const direct = await session.run({ input: new ort.Tensor('float32', Float32Array.from(row), [1, 4]) });
    const want = Array.from(direct.probabilities?.data as Float32Array);

    const v2 = await post(`${server.url}/v2/models/iris/infer`, irisRow(row));
    expect(v2.status).toBe(200);
    const v2Body = (await v2.json()) as { outputs: { name: string; data: number[] }[] };
    expect(v2Body.outputs.find((o) => o.name === 'probabilities')?.data).toEqual(want);

    expect(await (await fetch(`${server.url}/ping`)).json()).toEqual({ status: 'ok' });
    const instances = await post(`${server.url}/invocations`, { instances: [row] });
    expect(instances.status).toBe(200);
    expect(
      ((await instances.json()) as { predictions: { probabilities: number[] }[] }).predictions[0]
        ?.probabilities,
    ).toEqual(want);
    const csv = await fetch(`${server.url}/invocations`, {
      method: 'POST',
      headers: { 'content-type': 'text/csv', accept: 'text/csv' },
      body: `${row.join(',')}\n`,
    });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toBe('text/csv');
    expect((await csv.text()).trim().split(',').slice(0, 3).map(Number)).toEqual(want);

    // Bad requests are 4xx with a reason, and the server keeps serving.
    expect((await post(`${server.url}/v2/models/iris/infer`, '{"inputs": [')).status).toBe(400);
    expect((await post(`${server.url}/v2/models/nope/infer`, irisRow(row))).status).toBe(404);
    expect((await post(`${server.url}/invocations`, 'a,b', { 'content-type': 'text/csv' })).status).toBe(400);
    expect((await post(`${server.url}/v2/models/iris/infer`, irisRow(row))).status).toBe(200);
    expect(server.logs()).not.toContain('6.2,3.4');
  });

  it('answers the HEALTHCHECK command: healthy when ready, unhealthy when the server is gone', async () => {
    server = await startServer(stage, { MODEL_URI: path.join(stage, 'model') });
    await ready(server);
    // The command as the Dockerfile states it, run from the staged folder.
    const [command, ...args] = readDockerfile().healthcheck.map((a) => inStage(stage, a));
    expect(command).toBe('node');
    const check = () =>
      spawnSync(process.execPath, args, { env: { PORT: new URL(server?.url ?? '').port } }).status;
    expect(check()).toBe(0);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    expect(check()).toBe(1);
  });

  it('joins concurrent requests into batches, each answer its own, and refuses past the queue bound with 503 and Retry-After', async () => {
    server = await startServer(stage, {
      MODEL_URI: path.join(stage, 'model'),
      BATCH_MAX_SIZE: '64',
      // Long enough that the held requests are certainly still waiting while the bound is probed.
      BATCH_MAX_LATENCY_MS: '3000',
      MAX_QUEUE: '4',
    });
    await ready(server);
    const rows = [0, 1, 2, 3].map((i) => [4.5 + i, 3 - i / 4, 1 + i, 0.2 + i / 2]);
    const held = rows.map((r) => post(`${server?.url}/v2/models/iris/infer`, irisRow(r)));
    const probe = await untilFull(server);
    expect(probe.headers.get('retry-after')).toBe('1');
    expect(((await probe.json()) as { error: string }).error).toMatch(
      /limit of 4 requests in flight; retry after 1 s/,
    );
    // Health checks are never refused.
    expect((await fetch(`${server.url}/v2/health/ready`)).status).toBe(200);

    const replies = await Promise.all(held);
    for (const [i, reply] of replies.entries()) {
      expect(reply.status).toBe(200);
      const direct = await session.run({
        input: new ort.Tensor('float32', Float32Array.from(rows[i] ?? []), [1, 4]),
      });
      const body = (await reply.json()) as { outputs: { name: string; data: number[] }[] };
      expect(body.outputs.find((o) => o.name === 'probabilities')?.data).toEqual(
        Array.from(direct.probabilities?.data as Float32Array),
      );
    }
    expect((await post(`${server.url}/v2/models/iris/infer`, '{')).status).toBe(400);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    // The four waited together and ran as one batch.
    expect(server.logs()).toMatch(
      /"message":"stopped".*"batching":\{"iris":\{"runs":1,"requests":4,"joinedRuns":1,/,
    );
  });

  it('captures sampled rows and writes EMF metrics to stdout, which the awslogs driver ships', async () => {
    server = await startServer(stage, {
      MODEL_URI: path.join(stage, 'model'),
      CAPTURE_PERCENT: '100',
      CAPTURE_REDACT: 'sepal_length',
    });
    await ready(server);
    const replies = await Promise.all(
      [1, 2].map((i) => post(`${server?.url}/v2/models/iris/infer`, irisRow([5, 3, i, 1]))),
    );
    expect(replies.map((r) => r.status)).toEqual([200, 200]);
    server.child.kill('SIGTERM');
    expect(await server.exited).toBe(0);
    const lines = server
      .logs()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    const captured = lines.filter((l) => l.mdk_capture === 1);
    expect(
      captured.map((l) => l.inputs).sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))),
    ).toEqual([{ input: [null, 3, 1, 1] }, { input: [null, 3, 2, 1] }]);
    // Flushed at shutdown: both requests' latencies in one EMF line, so percentiles come from every value.
    const emf = lines.find((l) => Array.isArray(l.RequestLatency));
    expect(emf).toMatchObject({ model: 'iris', service: 'model-deploy-kit', CapturedRows: [1, 1] });
    expect(emf?.RequestLatency).toHaveLength(2);
  });

  it('drains on SIGTERM: requests in flight complete, then new connections are refused and it exits 0', async () => {
    server = await startServer(stage, {
      MODEL_URI: path.join(stage, 'model'),
      BATCH_MAX_SIZE: '64',
      BATCH_MAX_LATENCY_MS: '1500',
      MAX_QUEUE: '3',
    });
    await ready(server);
    const held = [1, 2, 3].map((i) => post(`${server?.url}/v2/models/iris/infer`, irisRow([5, 3, i, 1])));
    await untilFull(server);
    server.child.kill('SIGTERM');
    const replies = await Promise.all(held);
    expect(replies.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(await server.exited).toBe(0);
    await expect(fetch(`${server.url}/v2/health/live`)).rejects.toThrow();
    expect(server.logs()).toMatch(/"message":"draining".*"inFlight":3/);
    expect(server.logs()).toMatch(/"message":"stopped".*"batching":\{"iris":\{"runs":1,"requests":3,/);
  });

  describe('a model pulled from S3', () => {
    let model: WrittenModel;
    const bucket = 'models';
    const prefix = 'mlp/1/';

    beforeAll(async () => {
      model = writeModel(mlpModel(), { folderName: 'mlp', manifest: { name: 'mlp' } });
      await s3.send(new CreateBucketCommand({ Bucket: bucket }));
      await putModelFolder(s3, bucket, prefix, model.dir);
    });

    afterAll(() => removeDir(model.root));

    const awsEnv = () => ({
      AWS_ENDPOINT_URL: moto.endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
    });

    it('loads it when its sha256 matches, answering live before it is ready', async () => {
      const staged = path.join(dir, 'no-model');
      expect(stageImage(staged).code).toBe(0);
      expect(fs.readdirSync(path.join(staged, 'model'))).toEqual(['.no-baked-model']);
      server = await startServer(staged, {
        ...awsEnv(),
        MODEL_URI: `s3://${bucket}/${prefix}`,
        MODEL_SHA256: model.sha256,
      });
      expect((await fetch(`${server.url}/v2/health/live`)).status).toBe(200);
      await ready(server);
      const res = await post(`${server.url}/v2/models/mlp/infer`, {
        inputs: [{ name: 'input', shape: [1, 4], datatype: 'FP32', data: [0.1, 0.2, 0.3, 0.4] }],
      });
      expect(res.status).toBe(200);
      expect(server.logs()).toMatch(/"message":"model loaded".*"source":"s3:\/\/models\/mlp\/1\/model.onnx"/);
    });

    it('refuses to serve other bytes: exits 1 and says why', async () => {
      const staged = path.join(dir, 'no-model');
      server = await startServer(staged, {
        ...awsEnv(),
        MODEL_URI: `s3://${bucket}/${prefix}`,
        MODEL_SHA256: 'cd'.repeat(32),
      });
      expect(await server.exited).toBe(1);
      expect(server.logs()).toMatch(/"message":"model failed to load".*but the expected sha256 is cdcd/);
    });

    it('exits 2 on a bad setting, naming it', async () => {
      const staged = path.join(dir, 'no-model');
      const port = await freePort();
      const run = spawnSync(process.execPath, [path.join(staged, 'app', 'index.mjs')], {
        env: { PORT: String(port), BATCH_MAX_LATENCY_MS: '5', MODEL_URI: 's3://b/m/' },
        encoding: 'utf8',
      });
      expect(run.status).toBe(2);
      expect(run.stderr).toMatch(/BATCH_MAX_LATENCY_MS is set but batching is off/);
      const args = spawnSync(process.execPath, [path.join(staged, 'app', 'index.mjs'), 'train'], {
        encoding: 'utf8',
      });
      expect(args.status).toBe(2);
      expect(args.stderr).toMatch(/takes none, or 'serve'/);
    });
  });
});
