/**
 * `cdk deploy 'ModelServing-dev/*'` of the real app (bin/app.ts) into moto, with the CDK CLI, the way a platform
 * engineer deploys it. Lambda code runs (startMoto({ runLambdas: true })), so the stack's custom resources
 * (Custom::ModelVersion, and CDK's auto-delete-objects) really run and must answer for the stack to complete.
 *
 * What moto cannot show: resource types its CloudFormation does not support are placeholders (alarms, the API
 * stage, usage plan and key, bucket and topic policies, ...: see test/support/moto_lambda.py), and it ignores a
 * function's architecture and a bucket's access logging. Those are covered by the template tests in test/lib.
 * The app's functions carry onnxruntime for arm64 only, and this machine is x86_64, so no model runs here:
 * the construct deploy tests (x86_64 bundles) run the inference, batch and stream functions in moto.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  APIGatewayClient,
  GetMethodCommand,
  GetResourcesCommand,
  GetRestApiCommand,
} from '@aws-sdk/client-api-gateway';
import {
  CloudFormationClient,
  DescribeStackEventsCommand,
  DescribeStackResourcesCommand,
  DescribeStacksCommand,
  type Stack,
  type StackResource,
} from '@aws-sdk/client-cloudformation';
import { CloudWatchClient, GetMetricDataCommand } from '@aws-sdk/client-cloudwatch';
import { EventBridgeClient, ListRulesCommand, ListTargetsByRuleCommand } from '@aws-sdk/client-eventbridge';
import {
  GetFunctionConfigurationCommand,
  InvokeCommand,
  LambdaClient,
  type FunctionConfiguration,
} from '@aws-sdk/client-lambda';
import {
  GetBucketEncryptionCommand,
  GetBucketVersioningCommand,
  GetObjectCommand,
  GetPublicAccessBlockCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  ListObjectVersionsCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import { motoS3Client, startMoto, type MotoServer } from '../support/moto';

const ROOT = path.join(__dirname, '..', '..');
const CDK_CLI = path.join(ROOT, 'node_modules', 'aws-cdk', 'bin', 'cdk');
const IRIS = path.join(ROOT, 'models', 'iris');
const ACCOUNT = '123456789012';
const REGION = 'us-east-1';
const STAGE = 'ModelServing-dev';
const CLI_TIMEOUT_MS = 240_000;

const manifestBytes = fs.readFileSync(path.join(IRIS, 'model.json'));
const manifest = JSON.parse(manifestBytes.toString('utf8')) as {
  name: string;
  version: string;
  sha256: string;
  labels: string[];
  baseline: {
    features: {
      input: string;
      index: number;
      name: string;
      histogram: { edges: number[]; counts: number[] };
    }[];
    predictions: { output: string; count: number; categories: Record<string, number> }[];
  };
};
const PREFIX = `${manifest.name}/${manifest.version}/`;
const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

let moto: MotoServer;
let work: string;
let s3: S3Client;
let cfn: CloudFormationClient;
let lambda: LambdaClient;
let apigw: APIGatewayClient;
let events: EventBridgeClient;
let cloudwatch: CloudWatchClient;

/** Everything the CLI printed, for failure messages. */
const transcript: string[] = [];

function tail(text: string, lines = 60): string {
  return text.split('\n').slice(-lines).join('\n');
}

/** Runs the CDK CLI against moto. Resolves with its exit code and everything it printed. */
function runCdk(args: string[], cwd: string): Promise<{ code: number | null; output: string }> {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    AWS_ENDPOINT_URL: moto.endpoint,
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: REGION,
    AWS_DEFAULT_REGION: REGION,
    // Nothing from the machine's own AWS setup, and no network besides moto.
    AWS_CONFIG_FILE: path.join(work, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(work, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
    CDK_DISABLE_CLI_TELEMETRY: 'true',
    // Synth's bundling leaves folders in the temp dir: keep them in ours, which afterAll removes.
    TMPDIR: path.join(work, 'tmp'),
    NO_COLOR: '1',
    FORCE_COLOR: '0',
  };
  for (const name of ['AWS_PROFILE', 'AWS_SESSION_TOKEN', 'CDK_DEFAULT_ACCOUNT', 'CDK_DEFAULT_REGION'])
    delete env[name];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CDK_CLI, ...args, '--no-notices'], {
      cwd,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: CLI_TIMEOUT_MS,
    });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code) => {
      const output = Buffer.concat(chunks).toString('utf8');
      transcript.push(`$ cdk ${args.join(' ')}  (exit ${code})\n${output}`);
      resolve({ code, output });
    });
  });
}

/** Runs the CDK CLI and fails, with the end of its output, unless it succeeds. */
async function cdk(args: string[], cwd: string): Promise<string> {
  const { code, output } = await runCdk(args, cwd);
  if (code !== 0)
    throw new Error(`cdk ${args.join(' ')} exited with ${code}. Its output ended:\n${tail(output)}`);
  return output;
}

/**
 * The app as cdk.json runs it, with absolute paths: the CLI runs in the test's own folder, so what it
 * writes there (cdk.context.json with the availability zones prod's VPC looked up in moto) stays out of
 * the repository.
 */
const APP = `${path.join(ROOT, 'node_modules', '.bin', 'tsx')} ${path.join(ROOT, 'bin', 'app.ts')}`;

function deployArgs(extra: string[], lockFile = path.join(work, 'model-versions.json')): string[] {
  return [
    'deploy',
    ...(extra.includes('--app') ? [] : ['--app', APP]),
    `${STAGE}/*`,
    '--method=direct',
    '--require-approval',
    'never',
    '-c',
    `account=${ACCOUNT}`,
    '-c',
    `region=${REGION}`,
    // A copy: synth records new versions in the lock file, and the repository's copy must not change.
    '-c',
    `versionLockFile=${lockFile}`,
    ...extra,
  ];
}

async function stageStacks(): Promise<Stack[]> {
  const { Stacks } = await cfn.send(new DescribeStacksCommand({}));
  return (Stacks ?? []).filter((s) => s.StackName?.startsWith(`${STAGE}-`));
}

async function stageResources(type: string): Promise<StackResource[]> {
  const found: StackResource[] = [];
  for (const stack of await stageStacks()) {
    const { StackResources } = await cfn.send(
      new DescribeStackResourcesCommand({ StackName: stack.StackName }),
    );
    found.push(...(StackResources ?? []).filter((r) => r.ResourceType === type));
  }
  return found;
}

/** The stage's bucket that holds the published model version. */
async function modelBucket(): Promise<string> {
  const holders: string[] = [];
  for (const bucket of await stageResources('AWS::S3::Bucket')) {
    const name = bucket.PhysicalResourceId ?? '';
    const { KeyCount } = await s3.send(new ListObjectsV2Command({ Bucket: name, Prefix: PREFIX }));
    if ((KeyCount ?? 0) > 0) holders.push(name);
  }
  expect(holders).toHaveLength(1);
  return holders[0] as string;
}

/** The serving stack's outputs. */
async function servingOutputs(): Promise<Record<string, string | undefined>> {
  const stack = (await stageStacks()).find((s) => s.StackName === `${STAGE}-Serving`);
  return Object.fromEntries((stack?.Outputs ?? []).map((o) => [o.OutputKey ?? '', o.OutputValue]));
}

async function functionConfigs(): Promise<FunctionConfiguration[]> {
  return Promise.all(
    (await stageResources('AWS::Lambda::Function')).map((f) =>
      lambda.send(new GetFunctionConfigurationCommand({ FunctionName: f.PhysicalResourceId })),
    ),
  );
}

/**
 * Capture rows whose features follow the baseline: each histogram bin's count of values at its midpoint, so
 * every feature has exactly its baseline's distribution. `shift` moves one feature by its baseline range.
 */
function baselineRows(shift?: string): Record<string, number[]> {
  const columns = manifest.baseline.features.map((f) => {
    const { edges, counts } = f.histogram;
    const values = counts.flatMap((n, i) =>
      Array<number>(n).fill(((edges[i] ?? 0) + (edges[i + 1] ?? 0)) / 2),
    );
    const range = (edges[edges.length - 1] ?? 0) - (edges[0] ?? 0);
    return { f, values: f.name === shift ? values.map((v) => v + range) : values };
  });
  const rows = Math.min(...columns.map((c) => c.values.length));
  return Object.fromEntries(
    Array.from({ length: rows }, (_, r) => {
      const row: number[] = [];
      for (const c of columns) row[c.f.index] = c.values[r] as number;
      return [String(r), row];
    }),
  );
}

/** `rows` predicted classes in the holdout's proportions (the baseline's prediction counts, scaled). */
function baselineLabels(rows: number): { output: string; labels: number[] } {
  const p = manifest.baseline.predictions[0];
  if (!p) throw new Error('the iris manifest has no prediction baseline');
  const labels = Object.entries(p.categories).flatMap(([cls, n]) =>
    Array<number>(Math.round((n * rows) / p.count)).fill(Number(cls)),
  );
  return { output: p.output, labels: labels.slice(0, rows) };
}

async function versionIds(bucket: string): Promise<Record<string, string[]>> {
  const { Versions } = await s3.send(new ListObjectVersionsCommand({ Bucket: bucket, Prefix: PREFIX }));
  const ids: Record<string, string[]> = {};
  for (const v of Versions ?? []) (ids[v.Key ?? ''] ??= []).push(v.VersionId ?? '');
  return ids;
}

beforeAll(async () => {
  moto = await startMoto({ runLambdas: true });
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-deploy-'));
  fs.mkdirSync(path.join(work, 'tmp'));
  fs.copyFileSync(path.join(ROOT, 'model-versions.json'), path.join(work, 'model-versions.json'));
  const config = {
    region: REGION,
    endpoint: moto.endpoint,
    credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' },
  };
  s3 = motoS3Client(moto.endpoint);
  cfn = new CloudFormationClient(config);
  lambda = new LambdaClient(config);
  apigw = new APIGatewayClient(config);
  events = new EventBridgeClient(config);
  cloudwatch = new CloudWatchClient(config);

  // From a folder with no cdk.json, so bootstrapping does not synthesize the app.
  await cdk(['bootstrap', `aws://${ACCOUNT}/${REGION}`], work);
  await cdk(deployArgs(['--output', path.join(work, 'cdk.out')]), work);
}, CLI_TIMEOUT_MS * 2);

afterAll(async () => {
  s3?.destroy();
  cfn?.destroy();
  lambda?.destroy();
  apigw?.destroy();
  events?.destroy();
  cloudwatch?.destroy();
  await moto?.stop();
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

it('every stack of the stage is CREATE_COMPLETE, its custom resources answered', async () => {
  const stacks = await stageStacks();
  expect(stacks.length).toBeGreaterThan(0);
  for (const stack of stacks)
    expect({ stack: stack.StackName, status: stack.StackStatus }).toEqual({
      stack: stack.StackName,
      status: 'CREATE_COMPLETE',
    });
  expect(await stageResources('Custom::ModelVersion')).toHaveLength(1);
});

it('the model bucket is encrypted with KMS, versioned, and blocks public access', async () => {
  const bucket = await modelBucket();
  const encryption = await s3.send(new GetBucketEncryptionCommand({ Bucket: bucket }));
  const rule = encryption.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault;
  expect(rule?.SSEAlgorithm).toBe('aws:kms');
  expect(rule?.KMSMasterKeyID).toMatch(new RegExp(`^arn:aws:kms:${REGION}:${ACCOUNT}:key/`));
  expect((await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }))).Status).toBe('Enabled');
  expect(
    (await s3.send(new GetPublicAccessBlockCommand({ Bucket: bucket }))).PublicAccessBlockConfiguration,
  ).toEqual({
    BlockPublicAcls: true,
    IgnorePublicAcls: true,
    BlockPublicPolicy: true,
    RestrictPublicBuckets: true,
  });
});

it("the model version is published: both files, with their sha256, the model's bytes intact", async () => {
  const bucket = await modelBucket();
  const model = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${PREFIX}model.onnx` }));
  expect(model.Metadata).toEqual({ sha256: manifest.sha256 });
  expect(model.ContentType).toBe('application/octet-stream');
  const json = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${PREFIX}model.json` }));
  expect(json.Metadata).toEqual({ sha256: sha256(manifestBytes) });
  expect(json.ContentType).toBe('application/json');

  const body = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: `${PREFIX}model.onnx` }));
  expect(sha256(await body.Body!.transformToByteArray())).toBe(manifest.sha256);
});

it('the inference, batch and stream functions serve that version: MODEL_URI and MODEL_SHA256 point at it', async () => {
  const bucket = await modelBucket();
  const configs = await Promise.all(
    (await stageResources('AWS::Lambda::Function')).map((f) =>
      lambda.send(new GetFunctionConfigurationCommand({ FunctionName: f.PhysicalResourceId })),
    ),
  );
  const serving = configs.filter((c) => c.Environment?.Variables?.['MODEL_URI'] !== undefined);
  // The API's function, the batch job's object and batch functions, and the stream function.
  expect(serving.map((c) => c.Description).sort()).toEqual([
    'model-deploy-kit: batch job batches with iris 1.1.0 (ONNX)',
    'model-deploy-kit: batch job with iris 1.1.0 (ONNX)',
    'model-deploy-kit: serves iris 1.1.0 (ONNX, KServe V2)',
    'model-deploy-kit: stream inference with iris 1.1.0 (ONNX)',
  ]);
  for (const fn of serving) {
    expect(fn.Runtime).toBe('nodejs22.x');
    expect(fn.Environment?.Variables).toMatchObject({
      MODEL_URI: `s3://${bucket}/${PREFIX}`,
      MODEL_SHA256: manifest.sha256,
      MODEL_NAME: manifest.name,
    });
  }
});

it('a REST API routes POST /v2/models/{name}/infer to the inference function', async () => {
  const apis = await stageResources('AWS::ApiGateway::RestApi');
  expect(apis).toHaveLength(1);
  const restApiId = apis[0]?.PhysicalResourceId;
  expect((await apigw.send(new GetRestApiCommand({ restApiId }))).id).toBe(restApiId);

  const { items } = await apigw.send(new GetResourcesCommand({ restApiId }));
  const infer = (items ?? []).find((r) => r.path === '/v2/models/{name}/infer');
  expect(Object.keys(infer?.resourceMethods ?? {})).toContain('POST');
  const method = await apigw.send(
    new GetMethodCommand({ restApiId, resourceId: infer?.id, httpMethod: 'POST' }),
  );
  expect(method.methodIntegration?.type).toBe('AWS_PROXY');

  const functions = await stageResources('AWS::Lambda::Function');
  const targets = functions.filter((f) =>
    method.methodIntegration?.uri?.includes(`:function:${f.PhysicalResourceId}`),
  );
  expect(targets).toHaveLength(1);
  const target = await lambda.send(
    new GetFunctionConfigurationCommand({ FunctionName: targets[0]?.PhysicalResourceId }),
  );
  expect(target.Environment?.Variables?.['MODEL_URI']).toBeDefined();
});

it('data capture: the inference function captures every request (dev), into a capture bucket that is KMS-encrypted, versioned and private', async () => {
  const serving = (await functionConfigs()).filter(
    (c) => c.Environment?.Variables?.['MODEL_URI'] !== undefined,
  );
  const api = serving.find((c) => c.Description?.includes('KServe V2'));
  expect(api?.Environment?.Variables?.['CAPTURE_PERCENT']).toBe('100');
  // Batch and stream predictions are not requests to the endpoint: they do not capture.
  for (const other of serving.filter((c) => c !== api))
    expect(other.Environment?.Variables?.['CAPTURE_PERCENT']).toBeUndefined();

  const bucket = (await servingOutputs())['CaptureBucket'] ?? '';
  const buckets = (await stageResources('AWS::S3::Bucket')).map((b) => b.PhysicalResourceId);
  expect(buckets).toContain(bucket);
  const encryption = await s3.send(new GetBucketEncryptionCommand({ Bucket: bucket }));
  const rule = encryption.ServerSideEncryptionConfiguration?.Rules?.[0]?.ApplyServerSideEncryptionByDefault;
  expect(rule?.SSEAlgorithm).toBe('aws:kms');
  expect((await s3.send(new GetBucketVersioningCommand({ Bucket: bucket }))).Status).toBe('Enabled');
  expect(
    (await s3.send(new GetPublicAccessBlockCommand({ Bucket: bucket }))).PublicAccessBlockConfiguration,
  ).toMatchObject({ BlockPublicAcls: true, RestrictPublicBuckets: true });
});

it("data capture: moto's CloudFormation has no Firehose stream or subscription filter, so both are placeholders it marks, not resources", async () => {
  // What moto cannot show (the filter pattern, the Lambda transform, dynamic partitioning) the template tests
  // and the transform's own tests cover; here the stack holds one of each, marked as not created.
  const streams = await stageResources('AWS::KinesisFirehose::DeliveryStream');
  const filters = await stageResources('AWS::Logs::SubscriptionFilter');
  expect(streams).toHaveLength(1);
  expect(filters).toHaveLength(1);
  const serving = (await stageStacks()).find((s) => s.StackName === `${STAGE}-Serving`);
  const { StackEvents } = await cfn.send(new DescribeStackEventsCommand({ StackName: serving?.StackName }));
  const marked = (StackEvents ?? [])
    .filter((e) => e.ResourceStatusReason?.startsWith('moto_lambda placeholder'))
    .map((e) => e.LogicalResourceId);
  for (const r of [...streams, ...filters]) expect(marked).toContain(r.LogicalResourceId);
  // The rest of the path is real: the transform function and the stream's role exist.
  const transform = (await functionConfigs()).filter((c) => c.Description?.includes('capture'));
  expect(transform.length).toBeGreaterThanOrEqual(1);
});

it('the drift job runs hourly, and the deployed job reads the captures and the deployed manifest, writes its report and publishes PSI', async () => {
  const job = (await functionConfigs()).find(
    (c) => c.Environment?.Variables?.['CAPTURE_BUCKET'] !== undefined,
  );
  const env = job?.Environment?.Variables ?? {};
  const captureBucket = (await servingOutputs())['CaptureBucket'];
  expect(env).toMatchObject({
    CAPTURE_BUCKET: captureBucket,
    MODEL_BUCKET: await modelBucket(),
    MODEL_NAME: manifest.name,
    WINDOW_HOURS: '24',
    MIN_ROWS: '100',
    PSI_THRESHOLD: '0.2',
  });
  const { Rules } = await events.send(new ListRulesCommand({}));
  const hourly = (Rules ?? []).filter((r) => r.ScheduleExpression === 'rate(1 hour)');
  const targets = await Promise.all(
    hourly.map(
      async (r) => (await events.send(new ListTargetsByRuleCommand({ Rule: r.Name }))).Targets ?? [],
    ),
  );
  expect(targets.flat().map((t) => t.Arn)).toContain(job?.FunctionArn);

  // A day's captures of the deployed version: every feature as in its baseline, petal_length shifted, and the
  // predicted classes in the holdout's mix.
  const now = new Date();
  const rows = Object.values(baselineRows('petal_length'));
  const predicted = baselineLabels(rows.length);
  const lines = rows.map((row, i) =>
    JSON.stringify({
      mdk_capture: 1,
      time: new Date(now.getTime() - (i + 1) * 1000).toISOString(),
      model: manifest.name,
      version: manifest.version,
      row: 0,
      rows: 1,
      latency_ms: 1,
      inputs: { [manifest.baseline.features[0]?.input ?? 'input']: row },
      outputs: { [predicted.output]: predicted.labels[i] ?? 0 },
    }),
  );
  expect(lines.length).toBeGreaterThanOrEqual(100);
  const day = now.toISOString().slice(0, 10);
  const prefix = `captures/model=${manifest.name}/version=${manifest.version}/date=${day}/`;
  await s3.send(
    new PutObjectCommand({
      Bucket: captureBucket,
      Key: `${prefix}capture-stream-1-${day}.gz`,
      Body: gzipSync(`${lines.join('\n')}\n`),
    }),
  );

  const run = await lambda.send(
    new InvokeCommand({
      FunctionName: job?.FunctionName,
      Payload: Buffer.from(
        JSON.stringify({ windowHours: 24, end: new Date(now.getTime() + 1000).toISOString() }),
      ),
    }),
  );
  const answer = Buffer.from(run.Payload ?? new Uint8Array()).toString('utf8');
  // The handler's own answer, in the failure message, when it failed.
  expect({ error: run.FunctionError, answer: run.FunctionError ? answer : '' }).toEqual({
    error: undefined,
    answer: '',
  });

  const reports = await s3.send(
    new ListObjectsV2Command({
      Bucket: captureBucket,
      Prefix: `drift-reports/model=${manifest.name}/version=${manifest.version}/`,
    }),
  );
  expect(reports.Contents).toHaveLength(1);
  const body = await s3.send(
    new GetObjectCommand({ Bucket: captureBucket, Key: reports.Contents?.[0]?.Key }),
  );
  const report = JSON.parse(await body.Body!.transformToString()) as {
    rows: number;
    features: { name: string; psi?: number }[];
    drifted: string[];
    predictionPsi?: number;
    classShare?: Record<string, number>;
  };
  expect(report.rows).toBe(lines.length);
  const psi = Object.fromEntries(report.features.map((f) => [f.name, f.psi]));
  expect(psi['petal_length']).toBeGreaterThanOrEqual(0.2);
  expect(psi['sepal_length']).toBeLessThan(0.2);
  expect(report.drifted).toContain('petal_length');
  // The predictions keep the holdout's class mix: no prediction drift, the share of each class by its label.
  expect(report.predictionPsi).toBeLessThan(0.2);
  const share = (cls: number) =>
    (100 * predicted.labels.filter((l) => l === cls).length) / predicted.labels.length;
  expect(report.classShare?.[manifest.labels[1] ?? '']).toBeCloseTo(share(1), 1);

  // The same numbers in CloudWatch, per model and feature, as the dashboard's SEARCH and the alarms read them.
  const query = (id: string, metricName: string, dims: Record<string, string>) => ({
    Id: id,
    MetricStat: {
      Metric: {
        Namespace: 'ModelDeployKit',
        MetricName: metricName,
        Dimensions: Object.entries(dims).map(([Name, Value]) => ({ Name, Value })),
      },
      Period: 3600,
      Stat: 'Maximum',
    },
  });
  const data = await cloudwatch.send(
    new GetMetricDataCommand({
      StartTime: new Date(now.getTime() - 3 * 3600_000),
      EndTime: new Date(now.getTime() + 3600_000),
      MetricDataQueries: [
        query('shifted', 'FeaturePSI', { model: manifest.name, feature: 'petal_length' }),
        query('unshifted', 'FeaturePSI', { model: manifest.name, feature: 'sepal_length' }),
        query('highest', 'MaxFeaturePSI', { model: manifest.name }),
        query('predictions', 'PredictionPSI', { model: manifest.name }),
        query('versicolor', 'ClassShare', { model: manifest.name, class: manifest.labels[1] ?? '' }),
      ],
    }),
  );
  const values: Record<string, number[]> = {};
  for (const r of data.MetricDataResults ?? []) values[r.Id ?? ''] = r.Values ?? [];
  expect(Math.max(...(values['shifted'] ?? []))).toBeGreaterThanOrEqual(0.2);
  expect(Math.max(...(values['unshifted'] ?? []))).toBeLessThan(0.2);
  expect(values['unshifted']).not.toHaveLength(0);
  expect(Math.max(...(values['highest'] ?? []))).toBeGreaterThanOrEqual(0.2);
  expect(values['predictions']).not.toHaveLength(0);
  expect(Math.max(...(values['predictions'] ?? []))).toBeLessThan(0.2);
  expect(values['versicolor']?.[0]).toBeCloseTo(share(1), 1);
});

it('deploying the same assembly again changes nothing', async () => {
  const bucket = await modelBucket();
  const before = await versionIds(bucket);
  expect(Object.keys(before).sort()).toEqual([`${PREFIX}model.json`, `${PREFIX}model.onnx`]);

  await cdk(deployArgs(['--app', path.join(work, 'cdk.out')]), work);

  for (const stack of await stageStacks()) expect(stack.StackStatus).toMatch(/^(CREATE|UPDATE)_COMPLETE$/);
  expect(await versionIds(bucket)).toEqual(before);
});

it(
  'other bytes under a deployed version fail the deploy, say why, and leave the published version alone',
  async () => {
    const bucket = await modelBucket();
    const before = await versionIds(bucket);
    // The same model and version, with a new description: the manifest's bytes change, its version does not.
    const changed = path.join(work, 'iris-changed');
    fs.mkdirSync(changed);
    fs.copyFileSync(path.join(IRIS, 'model.onnx'), path.join(changed, 'model.onnx'));
    const edited = Buffer.from(
      JSON.stringify({ ...manifest, description: 'same version, other bytes' }, null, 2),
    );
    fs.writeFileSync(path.join(changed, 'model.json'), edited);

    // An app whose lock file has not seen this version (another repository, say), so synth cannot
    // catch it: the bucket must.
    const { code, output } = await runCdk(
      deployArgs(
        ['-c', `modelDir=${changed}`, '--output', path.join(work, 'cdk.out.changed')],
        path.join(work, 'other-app-versions.json'),
      ),
      work,
    );

    expect(code).not.toBe(0);
    const reason = `s3://${bucket}/${PREFIX}model.json already exists with sha256 ${sha256(manifestBytes)}, but this deployment's model.json has sha256 ${sha256(edited)}`;
    expect(output.replace(/\s+/g, ' ')).toContain(reason);
    expect(output).toContain('immutable: bump "version" in model.json');
    expect(await versionIds(bucket)).toEqual(before);
    const json = await s3.send(new HeadObjectCommand({ Bucket: bucket, Key: `${PREFIX}model.json` }));
    expect(json.Metadata).toEqual({ sha256: sha256(manifestBytes) });
  },
  CLI_TIMEOUT_MS,
);
