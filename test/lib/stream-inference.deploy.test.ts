import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CloudFormationClient } from '@aws-sdk/client-cloudformation';
import { KinesisClient, PutRecordCommand } from '@aws-sdk/client-kinesis';
import { CreateBucketCommand, type S3Client } from '@aws-sdk/client-s3';
import { ReceiveMessageCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import * as cdk from 'aws-cdk-lib';
import type * as kinesis from 'aws-cdk-lib/aws-kinesis';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as s3b from 'aws-cdk-lib/aws-s3';
import type * as sqs from 'aws-cdk-lib/aws-sqs';
import { clearBundleCache } from '../../lib/bundling';
import { ModelArtifact } from '../../lib/model-artifact';
import { StreamDestination, StreamInference, StreamSource } from '../../lib/stream-inference';
import { IRIS_DIR, TEST_ENV } from '../support/cdk';
import { deployToMoto, outputsOf, templateForMoto } from '../support/deploy';
import { motoClientConfig, motoS3Client, startMoto, type MotoServer } from '../support/moto';

/**
 * The real stream bundle, deployed with its queues and event source mappings into moto, which runs the function
 * in a local node process when a message or record arrives. moto 5.2 invokes a mapping once per message, inside
 * SendMessage / PutRecord, and deletes the message whatever the partial batch response says; so this shows the
 * deployed wiring (mapping, environment, grants, bundle) end to end, and the handler test shows the retries and
 * the DLQ against a real queue.
 */
describe('deployed into moto', () => {
  let moto: MotoServer;
  let s3: S3Client;
  let sqsClient: SQSClient;
  let kinesisClient: KinesisClient;
  let cfn: CloudFormationClient;
  const dirs: string[] = [];

  beforeAll(async () => {
    moto = await startMoto({ runLambdas: true });
    s3 = motoS3Client(moto.endpoint);
    sqsClient = new SQSClient(motoClientConfig(moto.endpoint));
    kinesisClient = new KinesisClient({
      ...motoClientConfig(moto.endpoint),
      requestHandler: new NodeHttpHandler(),
    });
    cfn = new CloudFormationClient(motoClientConfig(moto.endpoint));
    await s3.send(new CreateBucketCommand({ Bucket: 'stream-models' }));
  }, 60_000);
  afterAll(async () => {
    for (const c of [s3, sqsClient, kinesisClient, cfn]) c?.destroy();
    await moto?.stop();
    clearBundleCache();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  test('a message on the source queue, and a record on the source stream, become predictions on the output queues', async () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-stream-deploy-'));
    dirs.push(outdir);
    const app = new cdk.App({ outdir });
    const stack = new cdk.Stack(app, 'StreamTest', {
      env: TEST_ENV,
      synthesizer: new cdk.DefaultStackSynthesizer({ generateBootstrapVersionRule: false }),
    });
    const model = new ModelArtifact(stack, 'Iris', {
      bucket: s3b.Bucket.fromBucketName(stack, 'Models', 'stream-models'),
      modelDir: IRIS_DIR,
    });
    // The runner here is x86_64: the bundle must carry onnxruntime for it.
    const functionProps = { architecture: lambda.Architecture.X86_64 };
    const fromQueue = new StreamInference(stack, 'FromQueue', {
      model,
      source: StreamSource.sqs(),
      destination: StreamDestination.sqs(),
      functionProps,
    });
    const fromStream = new StreamInference(stack, 'FromStream', {
      model,
      source: StreamSource.kinesis({ startingPosition: lambda.StartingPosition.TRIM_HORIZON }),
      destination: StreamDestination.sqs(),
      functionProps,
    });
    const out = (id: string, value: string) => new cdk.CfnOutput(stack, id, { value });
    out('Requests', (fromQueue.sourceQueue as sqs.IQueue).queueUrl);
    out('Predictions', (fromQueue.destinationQueue as sqs.IQueue).queueUrl);
    out('RequestStream', (fromStream.sourceStream as kinesis.IStream).streamName);
    out('StreamPredictions', (fromStream.destinationQueue as sqs.IQueue).queueUrl);

    const deployed = await deployToMoto(cfn, 'stream-test', await templateForMoto(stack, s3));
    expect(deployed.StackStatus).toBe('CREATE_COMPLETE');
    const outputs = outputsOf(deployed);
    const output = (key: string): string => {
      const v = outputs[key];
      if (!v) throw new Error(`the stack has no output ${key}`);
      return v;
    };

    await sqsClient.send(
      new SendMessageCommand({
        QueueUrl: output('Requests'),
        MessageBody: JSON.stringify({ input: [6.4, 3.2, 4.5, 1.5], id: 'q-1' }),
      }),
    );
    await kinesisClient.send(
      new PutRecordCommand({
        StreamName: output('RequestStream'),
        PartitionKey: 'p',
        Data: Buffer.from(JSON.stringify({ input: [4.7, 3.2, 1.3, 0.2], id: 'k-1' })),
      }),
    );
    const receive = async (url: string) =>
      (await sqsClient.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10 })))
        .Messages ?? [];
    const [fromQueueMsgs, fromStreamMsgs] = [
      await receive(output('Predictions')),
      await receive(output('StreamPredictions')),
    ];
    expect(fromQueueMsgs.map((m) => JSON.parse(m.Body ?? '') as unknown)).toEqual([
      expect.objectContaining({
        id: 'q-1',
        model_name: 'iris',
        outputs: expect.objectContaining({ label: 1 }) as unknown,
      }),
    ]);
    expect(fromStreamMsgs.map((m) => JSON.parse(m.Body ?? '') as unknown)).toEqual([
      expect.objectContaining({
        id: 'k-1',
        outputs: expect.objectContaining({ label: 0 }) as unknown,
        source: expect.objectContaining({ partitionKey: 'p' }) as unknown,
      }),
    ]);
    // The message was consumed.
    expect(await receive(output('Requests'))).toEqual([]);
  }, 180_000);
});
