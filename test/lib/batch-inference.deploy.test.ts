/**
 * The real batch bundles, deployed with their bucket, rule and state machine into moto, which runs the
 * functions in a local node process: a file put under input/ is predicted by the deployed object function,
 * with its deployed environment, role and bundle, into the deployed job bucket.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import * as cdk from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3b from 'aws-cdk-lib/aws-s3';
import { BatchInference } from '../../lib/batch-inference';
import { clearBundleCache } from '../../lib/bundling';
import { ModelArtifact } from '../../lib/model-artifact';
import { IRIS_DIR, TEST_ENV } from '../support/cdk';
import { deployToMoto, outputsOf, templateForMoto } from '../support/deploy';
import { motoClientConfig, motoS3Client, startMoto, type MotoServer } from '../support/moto';

describe('BatchInference deployed into moto', () => {
  let moto: MotoServer;
  let s3: S3Client;
  let cfn: CloudFormationClient;
  let lambdaClient: LambdaClient;
  const dirs: string[] = [];

  beforeAll(async () => {
    moto = await startMoto({ runLambdas: true });
    s3 = motoS3Client(moto.endpoint);
    cfn = new CloudFormationClient(motoClientConfig(moto.endpoint));
    lambdaClient = new LambdaClient(motoClientConfig(moto.endpoint));
    await s3.send(new CreateBucketCommand({ Bucket: 'batch-models' }));
  }, 60_000);
  afterAll(async () => {
    s3?.destroy();
    cfn?.destroy();
    lambdaClient?.destroy();
    await moto?.stop();
    clearBundleCache();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('a CSV put under input/ becomes predictions, errors and a summary under output/<job>/', async () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-batch-deploy-'));
    dirs.push(outdir);
    const app = new cdk.App({ outdir });
    const stack = new cdk.Stack(app, 'BatchTest', {
      env: TEST_ENV,
      synthesizer: new cdk.DefaultStackSynthesizer({ generateBootstrapVersionRule: false }),
    });
    const model = new ModelArtifact(stack, 'Iris', {
      bucket: s3b.Bucket.fromBucketName(stack, 'Models', 'batch-models'),
      modelDir: IRIS_DIR,
    });
    // The runner here is x86_64: the bundle must carry onnxruntime for it.
    const batch = new BatchInference(stack, 'Batch', {
      model,
      functionProps: { architecture: lambda.Architecture.X86_64 },
      jobBucketProps: { removalPolicy: cdk.RemovalPolicy.DESTROY },
    });
    new cdk.CfnOutput(stack, 'Jobs', { value: batch.jobBucket.bucketName });
    new cdk.CfnOutput(stack, 'ObjectFunction', { value: batch.objectFunction.function.functionName });
    const deployed = await deployToMoto(cfn, 'batch-test', await templateForMoto(stack, s3));
    expect(deployed.StackStatus).toBe('CREATE_COMPLETE');
    const bucket = outputsOf(deployed).Jobs as string;

    const csv = [
      'id,sepal_length,sepal_width,petal_length,petal_width',
      'a,5.1,3.5,1.4,0.2',
      'b,6.7,x,4.4,1.4',
      'c,6.3,3.3,6,2.5',
    ].join('\n');
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: 'input/flowers.csv', Body: csv }));
    // moto keeps no EventBridge configuration on a bucket, so S3 never emits the event here: the test sends
    // the deployed function what the input rule's transformer makes of it (asserted on the template).
    const invoked = await lambdaClient.send(
      new InvokeCommand({
        FunctionName: outputsOf(deployed).ObjectFunction,
        InvocationType: 'Event',
        Payload: Buffer.from(JSON.stringify({ bucket, key: 'input/flowers.csv' })),
      }),
    );
    expect(invoked.StatusCode).toBe(202);
    const text = (key: string) =>
      s3
        .send(new GetObjectCommand({ Bucket: bucket, Key: key }))
        .then((r) => r.Body?.transformToString())
        .catch(() => undefined);
    let summary: string | undefined;
    for (let i = 0; i < 120 && summary === undefined; i++) {
      summary = await text('output/flowers/summary.json');
      if (summary === undefined) await new Promise((r) => setTimeout(r, 500));
    }
    expect(JSON.parse(summary ?? '{}')).toMatchObject({
      status: 'SUCCEEDED',
      rows: 3,
      predicted: 2,
      failed: 1,
    });
    const predictions = ((await text('output/flowers/predictions.jsonl')) ?? '')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { id: string; line: number; outputs: { label: number } });
    expect(predictions.map((p) => [p.id, p.line, p.outputs.label])).toEqual([
      ['a', 2, 0],
      ['c', 4, 2],
    ]);
    expect(await text('output/flowers/errors.jsonl')).toBe(
      '{"id":"b","line":3,"error":"column 3 (sepal_width): \\"x\\" is not a number"}\n',
    );
  }, 180_000);
});
