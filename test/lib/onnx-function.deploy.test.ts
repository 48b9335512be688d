/**
 * An A/B function deployed into moto: CloudFormation creates the function, publishes its version, runs the
 * real Custom::ModelVariantVersion bundle (which really changes, publishes and restores the function in moto's
 * Lambda) and routes the live alias; then the real inference bundle answers from each variant's version.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3b from 'aws-cdk-lib/aws-s3';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import {
  GetAliasCommand,
  GetFunctionConfigurationCommand,
  InvokeCommand,
  LambdaClient,
} from '@aws-sdk/client-lambda';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { proxyEvent } from '../../lambda/core/proxy-event';
import type { ModelManifest } from '../../lambda/core/types';
import { clearBundleCache } from '../../lib/bundling';
import { ModelArtifact } from '../../lib/model-artifact';
import { OnnxFunction } from '../../lib/onnx-function';
import { copyModel, IRIS_DIR, TEST_ENV } from '../support/cdk';
import { deployToMoto, outputsOf, templateForMoto } from '../support/deploy';
import { motoS3Client, startMoto, type MotoServer } from '../support/moto';

const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const BUCKET = 'ab-models';
const manifest = JSON.parse(fs.readFileSync(path.join(IRIS_DIR, 'model.json'), 'utf8')) as ModelManifest;

let moto: MotoServer;
let s3: S3Client;
let cfn: CloudFormationClient;
let lambdaClient: LambdaClient;
const dirs: string[] = [];

beforeAll(async () => {
  moto = await startMoto({ runLambdas: true });
  const config = { region: TEST_ENV.region, endpoint: moto.endpoint, credentials };
  s3 = motoS3Client(moto.endpoint);
  cfn = new CloudFormationClient(config);
  lambdaClient = new LambdaClient(config);
  await s3.send(new CreateBucketCommand({ Bucket: BUCKET }));
}, 60_000);

afterAll(async () => {
  s3?.destroy();
  cfn?.destroy();
  lambdaClient?.destroy();
  await moto?.stop();
  clearBundleCache();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

async function infer(functionName: string, qualifier: string, headers: Record<string, string> = {}) {
  const event = proxyEvent('POST', '/v2/models/iris/infer', manifest.sample?.request, headers);
  const out = await lambdaClient.send(
    // moto reads the qualifier from the name, not from the Qualifier parameter the SDK sends.
    new InvokeCommand({ FunctionName: `${functionName}:${qualifier}`, Payload: JSON.stringify(event) }),
  );
  const result = JSON.parse(Buffer.from(out.Payload ?? []).toString('utf8')) as {
    statusCode: number;
    headers?: Record<string, string>;
    body: string;
  };
  return {
    status: result.statusCode,
    variant: result.headers?.['x-model-variant'],
    body: JSON.parse(result.body) as Record<string, unknown>,
  };
}

test('the alias splits traffic between two versions, each serving its own model', async () => {
  const nextDir = copyModel({ manifest: (m) => (m.version = '1.2.0') });
  dirs.push(nextDir);
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-ab-deploy-'));
  dirs.push(outdir);
  const app = new cdk.App({ outdir });
  const stack = new cdk.Stack(app, 'AbTest', {
    env: TEST_ENV,
    synthesizer: new cdk.DefaultStackSynthesizer({ generateBootstrapVersionRule: false }),
  });
  const bucket = s3b.Bucket.fromBucketName(stack, 'Models', BUCKET);
  const fn = new OnnxFunction(stack, 'Inference', {
    artifact: new ModelArtifact(stack, 'Iris', { bucket, modelDir: IRIS_DIR }),
    challenger: { model: new ModelArtifact(stack, 'IrisNext', { bucket, modelDir: nextDir }), weight: 0.1 },
    // The runner here is x86_64: the bundle must carry onnxruntime for it.
    architecture: lambda.Architecture.X86_64,
  });
  new cdk.CfnOutput(stack, 'FunctionName', { value: fn.function.functionName });

  const deployed = await deployToMoto(cfn, 'ab-test', await templateForMoto(stack, s3));
  expect(deployed.StackStatus).toBe('CREATE_COMPLETE');
  const name = outputsOf(deployed).FunctionName as string;

  const alias = await lambdaClient.send(new GetAliasCommand({ FunctionName: name, Name: 'live' }));
  expect(alias.FunctionVersion).toBe('1');
  expect(alias.RoutingConfig?.AdditionalVersionWeights).toEqual({ '2': 0.1 });
  const env = async (qualifier?: string) =>
    (
      await lambdaClient.send(
        new GetFunctionConfigurationCommand({ FunctionName: name, Qualifier: qualifier }),
      )
    ).Environment?.Variables ?? {};
  expect((await env('2')).MODEL_URI).toBe(`s3://${BUCKET}/iris/1.2.0/`);
  expect((await env('2')).MODEL_VARIANT).toBe('challenger');
  // $LATEST is the primary's again, as CloudFormation left it.
  expect(await env()).toMatchObject({ MODEL_URI: `s3://${BUCKET}/iris/1.1.0/`, MODEL_VARIANT: 'primary' });

  const primary = await infer(name, '1');
  expect(primary).toMatchObject({ status: 200, variant: 'primary' });
  expect(primary.body).toEqual(manifest.sample?.response);
  const challenger = await infer(name, '2');
  expect(challenger).toMatchObject({ status: 200, variant: 'challenger' });
  expect(challenger.body.model_version).toBe('1.2.0');
  // A pinned request gets the challenger whichever version it lands on.
  const pinned = await infer(name, '1', { 'X-Model-Variant': 'challenger' });
  expect(pinned).toMatchObject({ status: 200, variant: 'challenger' });
  expect(pinned.body.model_version).toBe('1.2.0');
}, 300_000);
