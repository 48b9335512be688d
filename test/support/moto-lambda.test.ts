/**
 * moto with Lambda code that really runs (moto_lambda.py + lambda-runner.mjs): Invoke, and a CloudFormation
 * stack whose custom resource is answered by a function, the way CloudFormation does it on AWS.
 */
import {
  CloudFormationClient,
  CreateStackCommand,
  DescribeStackEventsCommand,
  DescribeStackResourceCommand,
  DescribeStacksCommand,
  UpdateStackCommand,
  type Stack,
} from '@aws-sdk/client-cloudformation';
import {
  GetAliasCommand,
  InvokeCommand,
  LambdaClient,
  type InvokeCommandOutput,
} from '@aws-sdk/client-lambda';
import {
  CreateBucketCommand,
  GetBucketTaggingCommand,
  GetBucketVersioningCommand,
  GetPublicAccessBlockCommand,
  PutObjectCommand,
  type S3Client,
} from '@aws-sdk/client-s3';
import {
  createMotoFunction,
  motoClientConfig,
  motoLambdaRole,
  motoS3Client,
  startMoto,
  type MotoServer,
} from './moto';
import { zip } from './zip';

const CODE_BUCKET = 'lambda-code';

let moto: MotoServer;
let s3: S3Client;
let lambda: LambdaClient;
let cfn: CloudFormationClient;
let roleArn: string;

/** Polls until the stack is no longer in progress. A stack that never settles fails with its last status. */
async function settled(stackName: string, limitMs = 60_000): Promise<Stack> {
  const until = Date.now() + limitMs;
  for (;;) {
    const { Stacks } = await cfn.send(new DescribeStacksCommand({ StackName: stackName }));
    const stack = Stacks?.[0];
    if (!stack) throw new Error(`no stack ${stackName}`);
    if (!stack.StackStatus?.endsWith('_IN_PROGRESS')) return stack;
    if (Date.now() > until) throw new Error(`${stackName} still ${stack.StackStatus} after ${limitMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

async function createStack(name: string, template: object): Promise<Stack> {
  await cfn.send(
    new CreateStackCommand({
      StackName: name,
      TemplateBody: JSON.stringify(template),
      Capabilities: ['CAPABILITY_IAM'],
    }),
  );
  return settled(name);
}

function output(stack: Stack, key: string): string | undefined {
  return stack.Outputs?.find((o) => o.OutputKey === key)?.OutputValue;
}

function createFunction(name: string, files: Record<string, string>, extra: { timeout?: number } = {}) {
  return createMotoFunction(lambda, {
    name,
    roleArn,
    files,
    timeout: extra.timeout ?? 30,
    environment: { GREETING: 'hello' },
  });
}

async function invoke(name: string, payload: unknown): Promise<{ out: InvokeCommandOutput; body: unknown }> {
  const out = await lambda.send(
    new InvokeCommand({ FunctionName: name, Payload: JSON.stringify(payload), LogType: 'Tail' }),
  );
  return { out, body: JSON.parse(Buffer.from(out.Payload ?? []).toString('utf8')) as unknown };
}

beforeAll(async () => {
  moto = await startMoto({ runLambdas: true });
  const config = motoClientConfig(moto.endpoint);
  s3 = motoS3Client(moto.endpoint);
  lambda = new LambdaClient(config);
  cfn = new CloudFormationClient(config);
  await s3.send(new CreateBucketCommand({ Bucket: CODE_BUCKET }));
  roleArn = await motoLambdaRole(moto.endpoint);
  expect(roleArn).toMatch(/^arn:aws:iam::123456789012:role\//);
});

afterAll(async () => {
  s3?.destroy();
  lambda?.destroy();
  cfn?.destroy();
  await moto?.stop();
});

describe('Invoke runs the function in node', () => {
  it('an ES module handler gets the event, its environment and a context, and reaches moto through the SDK', async () => {
    await createFunction('esm', {
      'index.mjs': `
        import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
        export const handler = async (event, context) => {
          console.log('listing buckets for', event.who);
          const { Buckets } = await new S3Client({}).send(new ListBucketsCommand({}));
          return {
            event,
            greeting: process.env.GREETING,
            region: process.env.AWS_REGION,
            buckets: (Buckets ?? []).map((b) => b.Name),
            functionName: context.functionName,
            hasRequestId: typeof context.awsRequestId === 'string' && context.awsRequestId.length > 0,
            remainingMs: context.getRemainingTimeInMillis(),
          };
        };`,
    });
    const { out, body } = await invoke('esm', { who: 'jest' });
    expect(out.FunctionError).toBeUndefined();
    expect(body).toEqual({
      event: { who: 'jest' },
      greeting: 'hello',
      region: 'us-east-1',
      buckets: [CODE_BUCKET],
      functionName: 'esm',
      hasRequestId: true,
      remainingMs: expect.any(Number) as number,
    });
    const remaining = (body as { remainingMs: number }).remainingMs;
    expect(remaining).toBeGreaterThan(0);
    expect(remaining).toBeLessThanOrEqual(30_000);
    expect(Buffer.from(out.LogResult ?? '', 'base64').toString('utf8')).toContain('listing buckets for jest');
  });

  it('a CommonJS callback handler works too', async () => {
    await createFunction('cjs', {
      'index.js': `exports.handler = (event, context, callback) => callback(null, { doubled: event.n * 2 });`,
    });
    const { out, body } = await invoke('cjs', { n: 21 });
    expect(out.FunctionError).toBeUndefined();
    expect(body).toEqual({ doubled: 42 });
  });

  it("a handler that throws is a function error with Lambda's error shape", async () => {
    await createFunction('throws', {
      'index.mjs': `export const handler = async () => { throw new RangeError('out of range'); };`,
    });
    const { out, body } = await invoke('throws', {});
    expect(out.FunctionError).toBe('Handled');
    expect(body).toMatchObject({ errorType: 'RangeError', errorMessage: 'out of range' });
  });

  it('a missing handler export is reported as such', async () => {
    await createFunction('noexport', { 'index.mjs': `export const other = () => 1;` });
    const { out, body } = await invoke('noexport', {});
    expect(out.FunctionError).toBe('Handled');
    expect(body).toMatchObject({
      errorType: 'Runtime.HandlerNotFound',
      errorMessage: 'index.handler is undefined or not exported',
    });
  });

  it("a handler that never finishes fails with Lambda's timeout error", async () => {
    await createFunction(
      'hangs',
      { 'index.mjs': `export const handler = () => new Promise(() => {});` },
      { timeout: 1 },
    );
    const { out, body } = await invoke('hangs', {});
    expect(out.FunctionError).toBe('Handled');
    expect(body).toMatchObject({
      errorType: 'Sandbox.Timedout',
      errorMessage: 'Task timed out after 1.00 seconds',
    });
  });
});

describe('CloudFormation custom resources', () => {
  // Answers the way CDK's own custom resource framework does: https.request with a hostname and no port.
  const httpsOnlyProvider = `
    const https = require('https');
    exports.handler = async (event) => {
      const url = new URL(event.ResponseURL);
      if (event.ResourceProperties.Silent === 'yes') throw new Error('crashed before answering');
      const failing = event.ResourceProperties.Fail === 'yes';
      const body = JSON.stringify({
        Status: failing ? 'FAILED' : 'SUCCESS',
        Reason: failing ? 'the greeting was refused' : 'ok',
        PhysicalResourceId: 'greeting-1',
        StackId: event.StackId,
        RequestId: event.RequestId,
        LogicalResourceId: event.LogicalResourceId,
        Data: { Answer: event.ResourceProperties.Greeting + ', ' + event.RequestType },
      });
      await new Promise((resolve, reject) => {
        const req = https.request(
          { hostname: url.hostname, path: url.pathname + url.search, method: 'PUT',
            headers: { 'content-type': '', 'content-length': Buffer.byteLength(body) } },
          (res) => { res.resume(); res.on('end', () => (res.statusCode < 300 ? resolve() : reject(new Error('HTTP ' + res.statusCode)))); },
        );
        req.on('error', reject);
        req.end(body);
      });
    };`;

  function template(greetingProperties: Record<string, string>): object {
    return {
      Resources: {
        ProviderRole: {
          Type: 'AWS::IAM::Role',
          Properties: {
            AssumeRolePolicyDocument: {
              Version: '2012-10-17',
              Statement: [
                { Effect: 'Allow', Principal: { Service: 'lambda.amazonaws.com' }, Action: 'sts:AssumeRole' },
              ],
            },
          },
        },
        Provider: {
          Type: 'AWS::Lambda::Function',
          Properties: {
            Runtime: 'nodejs22.x',
            Handler: 'index.handler',
            Role: { 'Fn::GetAtt': ['ProviderRole', 'Arn'] },
            Code: { S3Bucket: CODE_BUCKET, S3Key: 'provider.zip' },
            Timeout: 30,
          },
        },
        Greeting: {
          Type: 'Custom::Greeting',
          Properties: { ServiceToken: { 'Fn::GetAtt': ['Provider', 'Arn'] }, ...greetingProperties },
        },
        // Created after the custom resource has answered, so it can use what the answer carried.
        AnswerBucket: {
          Type: 'AWS::S3::Bucket',
          Properties: { Tags: [{ Key: 'answer', Value: { 'Fn::GetAtt': ['Greeting', 'Answer'] } }] },
        },
      },
      Outputs: {
        Answer: { Value: { 'Fn::GetAtt': ['Greeting', 'Answer'] } },
        Id: { Value: { Ref: 'Greeting' } },
        Bucket: { Value: { Ref: 'AnswerBucket' } },
      },
    };
  }

  beforeAll(async () => {
    await s3.send(
      new PutObjectCommand({
        Bucket: CODE_BUCKET,
        Key: 'provider.zip',
        Body: zip({ 'index.js': httpsOnlyProvider }),
      }),
    );
  });

  it('a stack whose custom resource is answered by its function reaches CREATE_COMPLETE', async () => {
    const stack = await createStack('custom', template({ Greeting: 'hello' }));
    expect(stack.StackStatus).toBe('CREATE_COMPLETE');
    expect(output(stack, 'Answer')).toBe('hello, Create');
    expect(output(stack, 'Id')).toBe('greeting-1');
    const tags = await s3.send(new GetBucketTaggingCommand({ Bucket: output(stack, 'Bucket') }));
    expect(tags.TagSet).toContainEqual({ Key: 'answer', Value: 'hello, Create' });
  });

  it('a changed custom resource gets an Update event, and keeps its physical id', async () => {
    await cfn.send(
      new UpdateStackCommand({
        StackName: 'custom',
        TemplateBody: JSON.stringify(template({ Greeting: 'hi' })),
        Capabilities: ['CAPABILITY_IAM'],
      }),
    );
    const stack = await settled('custom');
    expect(stack.StackStatus).toBe('UPDATE_COMPLETE');
    expect(output(stack, 'Answer')).toBe('hi, Update');
    expect(output(stack, 'Id')).toBe('greeting-1');
  });

  it('a FAILED answer to an Update fails the update', async () => {
    await cfn.send(
      new UpdateStackCommand({
        StackName: 'custom',
        TemplateBody: JSON.stringify(template({ Greeting: 'hi', Fail: 'yes' })),
        Capabilities: ['CAPABILITY_IAM'],
      }),
    );
    const stack = await settled('custom');
    expect(stack.StackStatus).toBe('UPDATE_FAILED');
    const { StackEvents } = await cfn.send(new DescribeStackEventsCommand({ StackName: 'custom' }));
    expect(StackEvents).toContainEqual(
      expect.objectContaining({
        LogicalResourceId: 'Greeting',
        ResourceStatus: 'UPDATE_FAILED',
        ResourceStatusReason: 'the greeting was refused',
      }),
    );
  });

  it('a FAILED answer fails the stack, with the Reason on the resource', async () => {
    const stack = await createStack('refused', template({ Greeting: 'hello', Fail: 'yes' }));
    expect(stack.StackStatus).toBe('CREATE_FAILED');
    const { StackEvents } = await cfn.send(new DescribeStackEventsCommand({ StackName: 'refused' }));
    expect(StackEvents).toContainEqual(
      expect.objectContaining({
        LogicalResourceId: 'Greeting',
        ResourceType: 'Custom::Greeting',
        ResourceStatus: 'CREATE_FAILED',
        ResourceStatusReason: 'the greeting was refused',
      }),
    );
  });

  it('a function that ends without answering fails the stack instead of leaving it in progress', async () => {
    const stack = await createStack('silent', template({ Greeting: 'hello', Silent: 'yes' }));
    expect(stack.StackStatus).toBe('CREATE_FAILED');
    const { StackEvents } = await cfn.send(new DescribeStackEventsCommand({ StackName: 'silent' }));
    const failed = StackEvents?.find((e) => e.LogicalResourceId === 'Greeting');
    expect(failed?.ResourceStatus).toBe('CREATE_FAILED');
    expect(failed?.ResourceStatusReason).toMatch(
      /ended without answering CloudFormation: .*crashed before answering/,
    );
  });
});

describe('CloudFormation beyond what moto supports', () => {
  it('aliases, versions and bucket settings are created, and unsupported types become placeholders that GetAtt can read', async () => {
    await s3.send(
      new PutObjectCommand({
        Bucket: CODE_BUCKET,
        Key: 'plain.zip',
        Body: zip({ 'index.mjs': 'export const handler = async () => 1;' }),
      }),
    );
    const template = {
      Resources: {
        Fn: {
          Type: 'AWS::Lambda::Function',
          Properties: {
            Runtime: 'nodejs22.x',
            Handler: 'index.handler',
            Role: roleArn,
            Code: { S3Bucket: CODE_BUCKET, S3Key: 'plain.zip' },
          },
        },
        Version: { Type: 'AWS::Lambda::Version', Properties: { FunctionName: { Ref: 'Fn' } } },
        Live: {
          Type: 'AWS::Lambda::Alias',
          Properties: {
            FunctionName: { Ref: 'Fn' },
            FunctionVersion: { 'Fn::GetAtt': ['Version', 'Version'] },
            Name: 'live',
          },
        },
        Invoke: {
          Type: 'AWS::Lambda::Permission',
          Properties: {
            FunctionName: { Ref: 'Live' },
            Action: 'lambda:InvokeFunction',
            Principal: 'apigateway.amazonaws.com',
          },
        },
        Store: {
          Type: 'AWS::S3::Bucket',
          Properties: {
            VersioningConfiguration: { Status: 'Enabled' },
            PublicAccessBlockConfiguration: {
              BlockPublicAcls: true,
              BlockPublicPolicy: true,
              IgnorePublicAcls: true,
              RestrictPublicBuckets: true,
            },
          },
        },
        Errors: {
          Type: 'AWS::CloudWatch::Alarm',
          Properties: {
            Namespace: 'AWS/Lambda',
            MetricName: 'Errors',
            Statistic: 'Sum',
            Period: 60,
            EvaluationPeriods: 1,
            Threshold: 1,
            ComparisonOperator: 'GreaterThanOrEqualToThreshold',
          },
        },
      },
      Outputs: {
        AliasArn: { Value: { Ref: 'Live' } },
        AlarmArn: { Value: { 'Fn::GetAtt': ['Errors', 'Arn'] } },
        Store: { Value: { Ref: 'Store' } },
      },
    };
    // Passed by URL, the way the CDK CLI passes templates too big to send inline.
    await s3.send(
      new PutObjectCommand({ Bucket: CODE_BUCKET, Key: 'aliased.json', Body: JSON.stringify(template) }),
    );
    await cfn.send(
      new CreateStackCommand({
        StackName: 'aliased',
        TemplateURL: `${moto.endpoint}/${CODE_BUCKET}/aliased.json`,
      }),
    );
    const stack = await settled('aliased');
    expect(stack.StackStatus).toBe('CREATE_COMPLETE');

    const fnName = (
      await cfn.send(new DescribeStackResourceCommand({ StackName: 'aliased', LogicalResourceId: 'Fn' }))
    ).StackResourceDetail?.PhysicalResourceId;
    const alias = await lambda.send(new GetAliasCommand({ FunctionName: fnName, Name: 'live' }));
    expect(alias.FunctionVersion).toBe('1');
    expect(output(stack, 'AliasArn')).toBe(alias.AliasArn);

    const store = output(stack, 'Store');
    expect((await s3.send(new GetBucketVersioningCommand({ Bucket: store }))).Status).toBe('Enabled');
    expect(
      (await s3.send(new GetPublicAccessBlockCommand({ Bucket: store }))).PublicAccessBlockConfiguration,
    ).toEqual({
      BlockPublicAcls: true,
      BlockPublicPolicy: true,
      IgnorePublicAcls: true,
      RestrictPublicBuckets: true,
    });

    expect(output(stack, 'AlarmArn')).toMatch(/^arn:aws:cloudwatch:us-east-1:123456789012:/);
    const { StackEvents } = await cfn.send(new DescribeStackEventsCommand({ StackName: 'aliased' }));
    expect(StackEvents).toContainEqual(
      expect.objectContaining({
        LogicalResourceId: 'Errors',
        ResourceType: 'AWS::CloudWatch::Alarm',
        ResourceStatusReason: expect.stringContaining('placeholder') as string,
      }),
    );
  });

  it('an update can keep a parameter that was left at its default', async () => {
    const template = (displayName: string) =>
      JSON.stringify({
        Parameters: { Env: { Type: 'String', Default: 'dev' } },
        Resources: { Topic: { Type: 'AWS::SNS::Topic', Properties: { DisplayName: displayName } } },
      });
    await createStack('params', JSON.parse(template('one')) as object);
    await cfn.send(
      new UpdateStackCommand({
        StackName: 'params',
        TemplateBody: template('two'),
        Parameters: [{ ParameterKey: 'Env', UsePreviousValue: true }],
      }),
    );
    expect((await settled('params')).StackStatus).toBe('UPDATE_COMPLETE');
  });
});
