/**
 * The real bundle: synth an x86_64 endpoint with real bundling, then run the synthesized asset folder in a
 * fresh node process (no jest, no tsx, no repository node_modules within reach), with the model fetched from
 * moto's S3 and the environment the template gives the function. If the asset is missing anything, the
 * import fails here rather than in Lambda.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import type { APIGatewayProxyResult } from 'aws-lambda';
import * as cdk from 'aws-cdk-lib';
import * as cxapi from 'aws-cdk-lib/cx-api';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3 from 'aws-cdk-lib/aws-s3';
import {
  bundleHandler,
  clearBundleCache,
  LAMBDA_UNZIPPED_LIMIT_BYTES,
  runtimeEntry,
} from '../../lib/bundling';
import { OnnxModelEndpoint } from '../../lib/onnx-model-endpoint';
import type { ModelManifest } from '../../lambda/core/types';
import { proxyEvent } from '../../lambda/core/proxy-event';
import { runBundle } from '../support/bundle-run';
import { motoAwsEnv, motoS3Client, putModelFolder, startMoto, type MotoServer } from '../support/moto';

const ROOT = path.join(__dirname, '..', '..');
const IRIS = path.join(ROOT, 'models', 'iris');
const manifest = JSON.parse(fs.readFileSync(path.join(IRIS, 'model.json'), 'utf8')) as ModelManifest;
const BUCKET = 'mdk-real-bundle-models';
/** The layout Custom::ModelVersion publishes: `<name>/<version>/`. */
const PREFIX = `${manifest.name}/${manifest.version}/`;
const MAX_ASSET_BYTES = 60 * 1024 * 1024;

interface TensorJson {
  name: string;
  shape: number[];
  datatype: string;
  data: number[];
}

function filesUnder(dir: string): string[] {
  return fs.readdirSync(dir, { recursive: true, encoding: 'utf8' }).filter((rel) => {
    return fs.statSync(path.join(dir, rel)).isFile();
  });
}

function bytesUnder(dir: string): number {
  return filesUnder(dir).reduce((sum, rel) => sum + fs.statSync(path.join(dir, rel)).size, 0);
}

const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** A template value with `Ref`s to the model bucket replaced by the bucket moto serves; anything else fails. */
function resolveWithBucket(value: unknown, bucketLogicalId: string): string {
  if (typeof value === 'string') return value;
  const v = value as { Ref?: string; 'Fn::Join'?: [string, unknown[]] };
  if (v.Ref === bucketLogicalId) return BUCKET;
  if (v['Fn::Join']) {
    const [sep, parts] = v['Fn::Join'];
    return parts.map((p) => resolveWithBucket(p, bucketLogicalId)).join(sep);
  }
  throw new Error(`cannot resolve ${JSON.stringify(value)} outside CloudFormation`);
}

const parse = (r: APIGatewayProxyResult) => JSON.parse(r.body) as Record<string, unknown>;

describe('the real bundle', () => {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-real-bundle-'));
  let assetDir: string;
  /** What Lambda would set: the template's Environment.Variables, and the runtime's own variables. */
  let functionEnv: Record<string, string>;
  let statsBytes: number | undefined;
  let moto: MotoServer | undefined;
  const report: Record<string, string> = {};

  beforeAll(async () => {
    const app = new cdk.App({ outdir });
    const stack = new cdk.Stack(app, 'RealBundle');
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS,
      functionProps: { architecture: lambda.Architecture.X86_64 },
    });
    const onnxFunction = endpoint.onnxFunction;
    if (!onnxFunction) throw new Error('the LAMBDA backend creates a function');
    const assembly = app.synth();

    const artifact = assembly.getStackByName(stack.stackName);
    const template = artifact.template as {
      Resources: Record<string, { Properties: Record<string, unknown> }>;
    };
    const fnId = stack.getLogicalId(onnxFunction.function.node.defaultChild as lambda.CfnFunction);
    const bucketId = stack.getLogicalId(endpoint.modelBucket?.bucket.node.defaultChild as s3.CfnBucket);
    const props = template.Resources[fnId]?.Properties as {
      Code: { S3Key: string };
      Handler: string;
      MemorySize: number;
      Environment: { Variables: Record<string, unknown> };
    };
    expect(props.Handler).toBe('index.handler');
    functionEnv = Object.fromEntries(
      Object.entries(props.Environment.Variables).map(([k, v]) => [k, resolveWithBucket(v, bucketId)]),
    );

    // The code's S3 key is the asset hash; the stack's asset manifest says which folder holds that asset.
    const hash = props.Code.S3Key.replace(/\.zip$/, '');
    const manifests = artifact.dependencies.filter(cxapi.AssetManifestArtifact.isAssetManifestArtifact);
    const source = manifests.map((m) => m.contents.files?.[hash]?.source).find((s) => s !== undefined);
    if (!source?.path) throw new Error(`no file asset ${hash} in the asset manifests of ${stack.stackName}`);
    expect(source.packaging).toBe('zip');
    assetDir = path.join(assembly.directory, source.path);
    Object.assign(functionEnv, {
      LAMBDA_TASK_ROOT: assetDir,
      AWS_LAMBDA_FUNCTION_NAME: 'real-bundle-inference',
      AWS_LAMBDA_FUNCTION_MEMORY_SIZE: String(props.MemorySize),
      AWS_LAMBDA_FUNCTION_VERSION: '$LATEST',
    });
    statsBytes = onnxFunction.bundleStats?.totalBytes;

    moto = await startMoto();
    const s3client = motoS3Client(moto.endpoint);
    try {
      await s3client.send(new CreateBucketCommand({ Bucket: BUCKET }));
      await putModelFolder(s3client, BUCKET, PREFIX, IRIS);
    } finally {
      s3client.destroy();
    }
  }, 120_000);

  afterAll(async () => {
    try {
      await moto?.stop();
    } finally {
      fs.rmSync(outdir, { recursive: true, force: true });
      // Jest never runs the bundler's exit hook.
      clearBundleCache();
      if (Object.keys(report).length > 0) console.log(`real bundle figures: ${JSON.stringify(report)}`);
    }
  });

  test('the x86_64 asset holds index.mjs and linux/x64 onnxruntime only, within 60 MiB', () => {
    const files = filesUnder(assetDir);
    const bytes = bytesUnder(assetDir);
    report['x86_64 asset (unzipped)'] = `${mib(bytes)} (${bytes} bytes)`;

    expect(bytes).toBeLessThanOrEqual(MAX_ASSET_BYTES);
    // What the construct reports is what was written.
    expect(statsBytes).toBe(bytes);
    expect(files).toContain('index.mjs');
    expect(files).toContain(path.join('node_modules', 'onnxruntime-node', 'package.json'));
    // Served from S3: nothing but the handler and its runtime at the top.
    expect(fs.readdirSync(assetDir).sort()).toEqual(['index.mjs', 'node_modules']);
    const napi = path.join(assetDir, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
    expect(fs.readdirSync(napi)).toEqual(['linux']);
    expect(fs.readdirSync(path.join(napi, 'linux'))).toEqual(['x64']);
    expect(fs.readdirSync(path.join(napi, 'linux', 'x64')).sort()).toEqual([
      'libonnxruntime.so.1',
      'onnxruntime_binding.node',
    ]);
    expect(files.filter((f) => /\.(map|ts|mts|cts)$/.test(f))).toEqual([]);
    expect(fs.readFileSync(path.join(assetDir, 'index.mjs'), 'utf8')).not.toMatch(/sourceMappingURL/);
  });

  test('the function environment points at the published version with the manifest sha256', () => {
    expect(functionEnv.MODEL_URI).toBe(`s3://${BUCKET}/${PREFIX}`);
    expect(functionEnv.MODEL_SHA256).toBe(manifest.sha256);
    expect(functionEnv.MODEL_NAME).toBe(manifest.name);
  });

  test('a fresh node process loads the asset, fetches the model from moto and answers V2 requests', async () => {
    if (!moto) throw new Error('moto did not start');
    const run = await runBundle<APIGatewayProxyResult>(
      assetDir,
      {
        ...functionEnv,
        ...motoAwsEnv(moto.endpoint),
      },
      [
        proxyEvent('GET', '/v2/health/ready'),
        proxyEvent('POST', `/v2/models/${manifest.name}/infer`, manifest.sample?.request),
        proxyEvent('POST', `/v2/models/${manifest.name}/infer`, {
          inputs: [{ name: 'petals', shape: [1, 4], datatype: 'FP32', data: [5.1, 3.5, 1.4, 0.2] }],
        }),
      ],
    );
    report['x86_64 cold init (import to ready, fresh process)'] = `${Math.round(run.initMs)} ms`;
    const [ready, infer, bad] = run.results as [
      APIGatewayProxyResult,
      APIGatewayProxyResult,
      APIGatewayProxyResult,
    ];

    // onnxruntime came from the asset, not from this repository.
    expect(run.nativeLibs.length).toBeGreaterThan(0);
    for (const lib of run.nativeLibs) expect(lib.startsWith(assetDir + path.sep)).toBe(true);

    expect(ready.statusCode).toBe(200);
    expect(parse(ready)).toEqual({ ready: true });

    expect(infer.statusCode).toBe(200);
    const got = parse(infer) as { outputs: TensorJson[] };
    const want = manifest.sample?.response as unknown as { outputs: TensorJson[] } & Record<string, unknown>;
    expect(got).toMatchObject({
      model_name: want.model_name,
      model_version: want.model_version,
      id: want.id,
    });
    expect(got.outputs.map((o) => o.name)).toEqual(want.outputs.map((o) => o.name));
    want.outputs.forEach((w, i) => {
      const o = got.outputs[i] as TensorJson;
      expect({ shape: o.shape, datatype: o.datatype }).toEqual({ shape: w.shape, datatype: w.datatype });
      expect(o.data).toHaveLength(w.data.length);
      w.data.forEach((x, j) => expect(o.data[j]).toBeCloseTo(x, 5));
    });

    expect(bad.statusCode).toBe(400);
    expect(parse(bad).error).toMatch(/unknown input 'petals'.*input/);
  });

  test('a wrong MODEL_SHA256 answers 503 naming the mismatch, on ready and on infer', async () => {
    if (!moto) throw new Error('moto did not start');
    const wrong = 'ab'.repeat(32);
    const run = await runBundle<APIGatewayProxyResult>(
      assetDir,
      {
        ...functionEnv,
        MODEL_SHA256: wrong,
        ...motoAwsEnv(moto.endpoint),
      },
      [
        proxyEvent('GET', '/v2/health/ready'),
        proxyEvent('POST', `/v2/models/${manifest.name}/infer`, manifest.sample?.request),
      ],
    );
    const [ready, infer] = run.results as [APIGatewayProxyResult, APIGatewayProxyResult];
    for (const res of [ready, infer]) {
      expect(res.statusCode).toBe(503);
      const error = parse(res).error as string;
      expect(error).toContain(`has sha256 ${manifest.sha256}`);
      expect(error).toContain(`the expected sha256 is ${wrong}`);
      expect(error).toContain(`s3://${BUCKET}/${PREFIX}model.onnx`);
    }
  });

  test('the arm64 bundle of the same handler is measured too', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-arm64-'));
    try {
      const stats = bundleHandler(
        {
          entry: runtimeEntry('api'),
          architecture: lambda.Architecture.ARM_64,
          includeOnnxRuntime: true,
          awaitAtInit: 'ready',
          maxBytes: LAMBDA_UNZIPPED_LIMIT_BYTES,
        },
        dir,
      );
      const bytes = bytesUnder(dir);
      report['arm64 asset (unzipped)'] = `${mib(bytes)} (${bytes} bytes)`;
      expect(stats.totalBytes).toBe(bytes);
      const napi = path.join(dir, 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
      expect(fs.readdirSync(path.join(napi, 'linux'))).toEqual(['arm64']);
      expect(bytes).toBeLessThanOrEqual(MAX_ASSET_BYTES);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
