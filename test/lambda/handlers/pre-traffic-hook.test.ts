/**
 * The pre-traffic hook against moto, as far as moto goes: the real inference bundle runs as two Lambda
 * function versions in moto (one serving iris, one serving an iris-like model with other weights, both
 * loading from moto's S3), and the hook reads the manifest from moto's S3 and invokes each version by ARN.
 *
 * moto 5.2 has no PutLifecycleEventHookExecutionStatus, so the hook's last step, `reportStatus`, cannot
 * succeed here: the test records the request the SDK puts on the wire to moto (deployment id, execution id,
 * status) and checks that moto's refusal fails the invocation instead of being swallowed.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  CreateFunctionCommand,
  InvokeCommand,
  LambdaClient,
  PublishVersionCommand,
} from '@aws-sdk/client-lambda';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as cdk from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { CanaryRelease } from '../../../lib/canary-release';
import {
  bundleHandler,
  clearBundleCache,
  LAMBDA_UNZIPPED_LIMIT_BYTES,
  runtimeEntry,
} from '../../../lib/bundling';
import {
  motoClientConfig,
  motoLambdaEnv,
  motoLambdaRole,
  motoS3Client,
  putModelFolder,
  startMoto,
  type MotoServer,
} from '../../support/moto';
import { IRIS_DIR, writeIrisVariant } from '../../support/iris-variants';
import { zipFolder } from '../../support/zip';

type HookModule = typeof import('../../../lambda/handlers/pre-traffic-hook');

const BUCKET = 'models';
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-hook-test-'));
const savedEnv = { ...process.env };

let moto: MotoServer;
let s3: S3Client;
let lambdaClient: LambdaClient;
let hook: HookModule;
let goodVersionArn: string;
let badVersionArn: string;
let roleArn: string;

/** A function running the real inference bundle with its model from moto's S3, and its version 1's ARN. */
async function inferenceVersion(name: string, roleArn: string, modelUri: string): Promise<string> {
  await lambdaClient.send(
    new CreateFunctionCommand({
      FunctionName: name,
      Runtime: 'nodejs22.x',
      Handler: 'index.handler',
      Role: roleArn,
      Code: { S3Bucket: BUCKET, S3Key: 'code/inference.zip' },
      Timeout: 60,
      MemorySize: 2048,
      Environment: { Variables: { MODEL_URI: modelUri, MODEL_NAME: 'iris', ORT_INTRA_OP_THREADS: '1' } },
    }),
  );
  const v = await lambdaClient.send(new PublishVersionCommand({ FunctionName: name }));
  if (!v.FunctionArn || v.Version !== '1') throw new Error(`unexpected version ${JSON.stringify(v)}`);
  return v.FunctionArn;
}

beforeAll(async () => {
  moto = await startMoto({ runLambdas: true });
  s3 = motoS3Client(moto.endpoint);
  lambdaClient = new LambdaClient(motoClientConfig(moto.endpoint));
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
  await putModelFolder(s3, BUCKET, 'iris/1.0.0/', IRIS_DIR);
  const variant = writeIrisVariant();
  await putModelFolder(s3, BUCKET, 'other-weights/iris/1.0.0/', variant.dir);
  fs.rmSync(variant.root, { recursive: true, force: true });

  // The inference function's real bundle, for this machine's architecture (moto runs it here).
  const assetDir = path.join(work, 'asset');
  bundleHandler(
    {
      entry: runtimeEntry('api'),
      architecture: process.arch === 'arm64' ? lambda.Architecture.ARM_64 : lambda.Architecture.X86_64,
      includeOnnxRuntime: true,
      awaitAtInit: 'ready',
      maxBytes: LAMBDA_UNZIPPED_LIMIT_BYTES,
    },
    assetDir,
  );
  await s3.send(
    new PutObjectCommand({ Bucket: BUCKET, Key: 'code/inference.zip', Body: zipFolder(assetDir) }),
  );
  roleArn = await motoLambdaRole(moto.endpoint);
  goodVersionArn = await inferenceVersion('iris-good', roleArn, `s3://${BUCKET}/iris/1.0.0/`);
  badVersionArn = await inferenceVersion(
    'iris-other-weights',
    roleArn,
    `s3://${BUCKET}/other-weights/iris/1.0.0/`,
  );

  // The hook's clients are made at import, from the environment, as in Lambda.
  Object.assign(process.env, motoLambdaEnv(moto.endpoint));
  hook = await import('../../../lambda/handlers/pre-traffic-hook');
}, 120_000);

afterAll(async () => {
  process.env = savedEnv;
  s3?.destroy();
  lambdaClient?.destroy();
  hook?.lambdaClient.destroy();
  hook?.codedeploy.destroy();
  await moto?.stop();
  clearBundleCache();
  fs.rmSync(work, { recursive: true, force: true });
});

const MANIFEST_URI = `s3://${BUCKET}/iris/1.0.0/model.json`;

describe('checkNewVersion: the sample against a function version in moto', () => {
  test('passes on the version serving iris', async () => {
    const result = await hook.checkNewVersion({ TARGET_VERSION_ARN: goodVersionArn, MANIFEST_URI });
    expect(result).toEqual({ passed: true, model: 'iris', status: 200, differences: [] });
  }, 60_000);

  test('fails on the version serving other weights, with the differences', async () => {
    const result = await hook.checkNewVersion({ TARGET_VERSION_ARN: badVersionArn, MANIFEST_URI });
    expect(result.passed).toBe(false);
    expect(result.status).toBe(200);
    expect(result.differences).toContain(`output 'probabilities'[1]: expected 0.9706579, got 0.002466524`);
    expect(result.differences).toContain(`output 'label'[1]: expected 0, got 2`);
  }, 60_000);

  test('reads the manifest from its own asset when MANIFEST_URI is unset (bundled delivery)', async () => {
    const task = path.join(work, 'task');
    fs.mkdirSync(task, { recursive: true });
    fs.copyFileSync(path.join(IRIS_DIR, 'model.json'), path.join(task, 'model.json'));
    const env = { TARGET_VERSION_ARN: goodVersionArn, LAMBDA_TASK_ROOT: task };
    expect(hook.manifestLocation(env)).toBe(path.join(task, 'model.json'));
    expect((await hook.checkNewVersion(env)).passed).toBe(true);
  }, 60_000);

  test('fails, never throws, when the manifest, the version or the setting is missing', async () => {
    const noManifest = await hook.checkNewVersion({
      TARGET_VERSION_ARN: goodVersionArn,
      MANIFEST_URI: `s3://${BUCKET}/iris/9.9.9/model.json`,
    });
    expect(noManifest.differences).toEqual([
      expect.stringMatching(
        /^cannot read the manifest: cannot read s3:\/\/models\/iris\/9\.9\.9\/model\.json/,
      ) as string,
    ]);
    const noVersion = await hook.checkNewVersion({
      TARGET_VERSION_ARN: `${goodVersionArn.slice(0, -1)}7`,
      MANIFEST_URI,
    });
    expect(noVersion.passed).toBe(false);
    expect(noVersion.differences[0]).toMatch(/^the request failed: .*iris-good/);
    expect(await hook.checkNewVersion({ MANIFEST_URI })).toEqual({
      passed: false,
      model: '?',
      differences: ['TARGET_VERSION_ARN is not set'],
    });
  }, 60_000);
});

describe('handler', () => {
  /** The bodies the CodeDeploy client sends, seen on the wire before moto answers. */
  function recordCodeDeploy(): { target?: string; body: unknown }[] {
    const sent: { target?: string; body: unknown }[] = [];
    hook.codedeploy.middlewareStack.add(
      (next) => async (args) => {
        const req = args.request as { headers: Record<string, string>; body: string | Uint8Array };
        const body = typeof req.body === 'string' ? req.body : new TextDecoder().decode(req.body);
        sent.push({ target: req.headers['x-amz-target'], body: JSON.parse(body) as unknown });
        return next(args);
      },
      { step: 'finalizeRequest', name: 'recordForTest' },
    );
    return sent;
  }

  test.each([
    ['iris', 'Succeeded', () => goodVersionArn],
    ['other weights', 'Failed', () => badVersionArn],
  ])(
    'on the version serving %s it reports %s; moto refuses that call, so the invocation fails',
    async (_, status, arn) => {
      process.env.TARGET_VERSION_ARN = arn();
      process.env.MANIFEST_URI = MANIFEST_URI;
      const sent = recordCodeDeploy();
      try {
        const event = { DeploymentId: 'd-ABCDEF123', LifecycleEventHookExecutionId: 'exec-1' };
        // moto answers this action with an HTML 500 (not implemented); the SDK retries, then the handler throws.
        const err = await hook.handler(event).then(
          () => undefined,
          (e: unknown) => e as { $metadata?: { httpStatusCode?: number } },
        );
        expect(err?.$metadata?.httpStatusCode).toBe(500);
        const expected = {
          target: 'CodeDeploy_20141006.PutLifecycleEventHookExecutionStatus',
          body: { deploymentId: 'd-ABCDEF123', lifecycleEventHookExecutionId: 'exec-1', status },
        };
        expect(sent.length).toBeGreaterThan(0);
        expect(sent).toEqual(sent.map(() => expected));
      } finally {
        hook.codedeploy.middlewareStack.remove('recordForTest');
      }
    },
    60_000,
  );
});

describe('the synthesized hook asset, run as a Lambda function in moto', () => {
  /** CanaryRelease's own hook asset for bundled delivery (index.mjs + model.json), bundled for real. */
  function synthHookAsset(): string {
    const app = new cdk.App({ outdir: path.join(work, 'cdk.out') });
    const stack = new cdk.Stack(app, 'Hook');
    // The alias only anchors the deployment group here; the hook's target comes from its environment below.
    const fn = new lambda.Function(stack, 'Fn', {
      runtime: lambda.Runtime.NODEJS_22_X,
      handler: 'index.handler',
      code: lambda.Code.fromInline('exports.handler = async () => ({})'),
    });
    const alias = new lambda.Alias(stack, 'Live', { aliasName: 'live', version: fn.currentVersion });
    const release = new CanaryRelease(stack, 'Release', {
      alias,
      version: fn.currentVersion,
      modelDir: IRIS_DIR,
    });
    const assembly = app.synth();
    const hook = release.preTrafficHook as lambda.Function;
    const t = assembly.getStackByName('Hook').template as {
      Resources: Record<string, { Properties: { Code: { S3Key: string } } }>;
    };
    const key =
      t.Resources[stack.getLogicalId(hook.node.defaultChild as lambda.CfnFunction)]?.Properties.Code.S3Key;
    return path.join(assembly.directory, `asset.${(key ?? '').replace(/\.zip$/, '')}`);
  }

  test.each([
    ['iris', 'pre-traffic sample check passed', () => goodVersionArn],
    ['other weights', 'pre-traffic sample check failed: the deployment stops', () => badVersionArn],
  ])(
    'on the version serving %s: the bundle reads its own model.json, invokes the version and logs "%s"; only the CodeDeploy call fails',
    async (name, logged, arn) => {
      const asset = synthHookAsset();
      expect(fs.readdirSync(asset).sort()).toEqual(['index.mjs', 'model.json']);
      const fnName = `hook-${name.replace(/\W/g, '-')}`;
      await lambdaClient.send(
        new CreateFunctionCommand({
          FunctionName: fnName,
          Runtime: 'nodejs22.x',
          Handler: 'index.handler',
          Role: roleArn,
          Code: { ZipFile: zipFolder(asset) },
          Timeout: 60,
          Environment: { Variables: { TARGET_VERSION_ARN: arn() } },
        }),
      );
      const out = await lambdaClient.send(
        new InvokeCommand({
          FunctionName: fnName,
          LogType: 'Tail',
          Payload: JSON.stringify({ DeploymentId: 'd-XYZ', LifecycleEventHookExecutionId: 'exec-2' }),
        }),
      );
      const logs = Buffer.from(out.LogResult ?? '', 'base64').toString('utf8');
      expect(logs).toContain(logged);
      expect(logs).toContain('"deploymentId":"d-XYZ"');
      // No payloads: neither the sample request nor the response body is logged.
      expect(logs).not.toContain('"inputs"');
      expect(logs).not.toContain('"outputs"');
      // moto has no PutLifecycleEventHookExecutionStatus: that one call fails the invocation.
      expect(out.FunctionError).toBeTruthy();
      expect(Buffer.from(out.Payload ?? []).toString('utf8')).toMatch(/Deserialization error|500/);
    },
    120_000,
  );
});
