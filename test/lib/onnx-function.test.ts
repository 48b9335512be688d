import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as cdk from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { clearBundleCache } from '../../lib/bundling';
import { ModelArtifact } from '../../lib/model-artifact';
import { ModelBucket } from '../../lib/model-bucket';
import { OnnxFunction, type ChallengerProps, type OnnxFunctionProps } from '../../lib/onnx-function';
import { copyModel, IRIS_DIR, onlyResource, template, testStack } from '../support/cdk';

const SHA = '81c53a2a6b7cfd1c4789ff8c55bc8e106c6457e5cae1d12f057f0d3ea740f0da';

function withArtifact(props: Partial<OnnxFunctionProps> = {}) {
  const stack = testStack();
  const models = new ModelBucket(stack, 'Models');
  const artifact = new ModelArtifact(stack, 'Iris', { bucket: models.bucket, modelDir: IRIS_DIR });
  const fn = new OnnxFunction(stack, 'Inference', { artifact, ...props });
  return { stack, fn, artifact, t: template(stack) };
}

/** The inference function's properties (the stack also holds the model publisher). */
function inferenceProps(t: ReturnType<typeof template>): Record<string, unknown> {
  const fns = Object.values(t.findResources('AWS::Lambda::Function')) as {
    Properties: Record<string, unknown>;
  }[];
  const found = fns.filter((f) => JSON.stringify(f.Properties.Environment ?? {}).includes('MODEL_URI'));
  expect(found).toHaveLength(1);
  return (found[0] as { Properties: Record<string, unknown> }).Properties;
}

describe('OnnxFunction', () => {
  test('defaults: arm64, nodejs22.x, 2 GB, 30 s, ESM handler, model from S3 with its sha256, live alias', () => {
    const { t, fn } = withArtifact();
    const props = inferenceProps(t);
    expect(props).toMatchObject({
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      MemorySize: 2048,
      Timeout: 30,
      Handler: 'index.handler',
    });
    expect(props).not.toHaveProperty('TracingConfig');
    const env = (props.Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env).toMatchObject({
      MODEL_SHA256: SHA,
      MODEL_NAME: 'iris',
      POWERTOOLS_LOG_LEVEL: 'INFO',
      LOG_PAYLOADS: 'false',
      POWERTOOLS_METRICS_NAMESPACE: 'ModelDeployKit',
    });
    expect(JSON.stringify(env.MODEL_URI)).toContain('/iris/1.1.0/');
    expect(env).not.toHaveProperty('MAX_BATCH');
    expect(props).not.toHaveProperty('ReservedConcurrentExecutions');
    t.hasResourceProperties('AWS::Lambda::Alias', { Name: 'live' });
    expect(JSON.stringify(t.findResources('AWS::Lambda::Alias'))).not.toContain(
      'ProvisionedConcurrencyConfig',
    );
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
    expect(fn.modelName).toBe('iris');
    expect(fn.modelVersion).toBe('1.1.0');
  });

  test('its role reads that model version only, and writes its own log group; no managed policies', () => {
    const { t, stack, fn } = withArtifact();
    const roleId = stack.getLogicalId(fn.role.node.defaultChild as iam.CfnRole);
    const role = t.findResources('AWS::IAM::Role')[roleId] as { Properties: Record<string, unknown> };
    expect(role.Properties).not.toHaveProperty('ManagedPolicyArns');
    const policy = JSON.stringify(
      t.findResources('AWS::IAM::Policy', { Properties: { Roles: [{ Ref: roleId }] } }),
    );
    expect(policy).toContain('/iris/1.1.0/model.onnx');
    expect(policy).toContain('logs:PutLogEvents');
    expect(policy).toContain('kms:Decrypt');
    expect(policy).not.toContain('s3:PutObject');
    expect(policy).not.toContain('/*"');
  });

  test('the function waits for the model version to be published', () => {
    const { t, stack, fn, artifact } = withArtifact();
    const fnId = stack.getLogicalId(fn.function.node.defaultChild as lambda.CfnFunction);
    const crId = stack.getLogicalId(artifact.resource.node.defaultChild as cdk.CfnResource);
    const resource = t.findResources('AWS::Lambda::Function')[fnId] as { DependsOn?: string[] };
    expect(resource.DependsOn).toContain(crId);
  });

  test('every sizing and logging prop reaches the template', () => {
    const { t } = withArtifact({
      architecture: lambda.Architecture.X86_64,
      runtime: lambda.Runtime.NODEJS_24_X,
      memorySize: 3008,
      timeout: cdk.Duration.seconds(20),
      reservedConcurrentExecutions: 10,
      provisionedConcurrentExecutions: 2,
      tracing: lambda.Tracing.ACTIVE,
      logRetention: logs.RetentionDays.ONE_WEEK,
      logLevel: 'DEBUG',
      logPayloads: true,
      limits: { maxBatch: 64, maxElements: 1000, maxPayloadBytes: 1_000_000 },
      intraOpThreads: 2,
      environment: { EXTRA: '1' },
    });
    const props = inferenceProps(t);
    expect(props).toMatchObject({
      Runtime: 'nodejs24.x',
      Architectures: ['x86_64'],
      MemorySize: 3008,
      Timeout: 20,
      ReservedConcurrentExecutions: 10,
      TracingConfig: { Mode: 'Active' },
    });
    expect((props.Environment as { Variables: unknown }).Variables).toMatchObject({
      POWERTOOLS_LOG_LEVEL: 'DEBUG',
      LOG_PAYLOADS: 'true',
      MAX_BATCH: '64',
      MAX_ELEMENTS: '1000',
      MAX_PAYLOAD_BYTES: '1000000',
      ORT_INTRA_OP_THREADS: '2',
      EXTRA: '1',
    });
    t.hasResourceProperties('AWS::Lambda::Alias', {
      Name: 'live',
      ProvisionedConcurrencyConfig: { ProvisionedConcurrentExecutions: 2 },
    });
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 7 });
  });

  test('a bundled model is served from the asset: no bucket, no S3 grant', () => {
    const stack = testStack();
    const fn = new OnnxFunction(stack, 'Inference', { bundledModelDir: IRIS_DIR });
    const t = template(stack);
    t.resourceCountIs('AWS::S3::Bucket', 0);
    const props = inferenceProps(t);
    expect((props.Environment as { Variables: unknown }).Variables).toMatchObject({
      MODEL_URI: '/var/task/model',
      MODEL_SHA256: SHA,
      MODEL_NAME: 'iris',
    });
    expect(JSON.stringify(t.findResources('AWS::IAM::Policy'))).not.toContain('s3:');
    expect(fn.modelUri).toBe('/var/task/model');
  });

  test('a log group can be brought in', () => {
    const stack = testStack();
    const logGroup = new logs.LogGroup(stack, 'Mine', { retention: logs.RetentionDays.ONE_DAY });
    const fn = new OnnxFunction(stack, 'Inference', { bundledModelDir: IRIS_DIR, logGroup });
    expect(fn.logGroup).toBe(logGroup);
    template(stack).resourceCountIs('AWS::Logs::LogGroup', 1);
  });

  test('metric helpers point at the function and at the runtime metrics', () => {
    const stack = testStack();
    const fn = new OnnxFunction(stack, 'Inference', { bundledModelDir: IRIS_DIR });
    expect(fn.metricErrors().metricName).toBe('Errors');
    expect(fn.metricThrottles().metricName).toBe('Throttles');
    expect(fn.metricDuration().statistic).toBe('p99');
    expect(fn.metricConcurrentExecutions().metricName).toBe('ConcurrentExecutions');
    const latency = fn.metricInferenceLatency();
    expect(latency.namespace).toBe('ModelDeployKit');
    expect(latency.dimensions).toEqual({ service: 'model-deploy-kit', model: 'iris' });
    expect(fn.metricBadRequests().metricName).toBe('BadRequestErrors');
    expect(fn.metricModelLoadFailures().dimensions).toEqual({ service: 'model-deploy-kit' });
    expect(fn.metricErrorRate().expression).toContain('errors / invocations');
  });

  test('grantInvoke grants the live alias', () => {
    const stack = testStack();
    const fn = new OnnxFunction(stack, 'Inference', { bundledModelDir: IRIS_DIR });
    const caller = new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
    fn.grantInvoke(caller);
    const policy = JSON.stringify(template(stack).findResources('AWS::IAM::Policy'));
    expect(policy).toContain('lambda:InvokeFunction');
    expect(policy).toContain('InferenceLive');
  });

  test('maxAssetSizeBytes fails a real bundle that is too big, and says what is in it', () => {
    const outdir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-too-big-'));
    const stack = new cdk.Stack(new cdk.App({ outdir }), 'Real', {
      env: { account: '123456789012', region: 'us-east-1' },
    });
    try {
      expect(
        () =>
          new OnnxFunction(stack, 'Inference', {
            bundledModelDir: IRIS_DIR,
            maxAssetSizeBytes: 10 * 1024 * 1024,
          }),
      ).toThrow(
        /The Lambda asset is 2\d\.\d MB unzipped \(handler 0\.\d MB, onnxruntime 2\d\.\d MB, model 0\.0 MB\), over the 10\.0 MB limit: serve a large model from S3/,
      );
    } finally {
      clearBundleCache();
      fs.rmSync(outdir, { recursive: true, force: true });
    }
  });

  const bucket = (stack: cdk.Stack) => s3.Bucket.fromBucketName(stack, 'B', 'team-models');
  test.each<[string, (stack: cdk.Stack) => OnnxFunctionProps, RegExp]>([
    [
      'neither model source',
      () => ({}),
      /give exactly one of artifact .* or bundledModelDir .*, got neither/,
    ],
    [
      'both model sources',
      (stack) => ({
        artifact: new ModelArtifact(stack, 'A', { bucket: bucket(stack), modelDir: IRIS_DIR }),
        bundledModelDir: IRIS_DIR,
      }),
      /got both/,
    ],
    [
      'nodejs20.x',
      () => ({ bundledModelDir: IRIS_DIR, runtime: lambda.Runtime.NODEJS_20_X }),
      /Node.js 22 or newer .* got nodejs20.x/,
    ],
    ['python', () => ({ bundledModelDir: IRIS_DIR, runtime: lambda.Runtime.PYTHON_3_12 }), /got python3.12/],
    [
      '64 MB of memory',
      () => ({ bundledModelDir: IRIS_DIR, memorySize: 64 }),
      /memorySize must be an integer from 128 to 10240 MB, got 64/,
    ],
    [
      'a 20 minute timeout',
      () => ({ bundledModelDir: IRIS_DIR, timeout: cdk.Duration.minutes(20) }),
      /timeout must be 1 s to 15 min, got 20 minutes/,
    ],
    [
      'zero reserved concurrency',
      () => ({ bundledModelDir: IRIS_DIR, reservedConcurrentExecutions: 0 }),
      /reservedConcurrentExecutions must be a positive integer, got 0/,
    ],
    [
      'more provisioned than reserved',
      () => ({
        bundledModelDir: IRIS_DIR,
        reservedConcurrentExecutions: 2,
        provisionedConcurrentExecutions: 5,
      }),
      /provisionedConcurrentExecutions \(5\) cannot exceed reservedConcurrentExecutions \(2\)/,
    ],
    [
      'a fractional batch limit',
      () => ({ bundledModelDir: IRIS_DIR, limits: { maxBatch: 1.5 } }),
      /limits.maxBatch must be a positive integer, got 1.5/,
    ],
    [
      'zero threads',
      () => ({ bundledModelDir: IRIS_DIR, intraOpThreads: 0 }),
      /intraOpThreads must be a positive integer, got 0/,
    ],
  ])('%s is refused with a message naming it', (_name, props, message) => {
    const stack = testStack();
    expect(() => new OnnxFunction(stack, 'Inference', props(stack))).toThrow(message);
  });
});

describe('OnnxFunction with an A/B challenger', () => {
  const challengerDir = copyModel({ manifest: (m) => (m.version = '1.2.0') });
  afterAll(() => fs.rmSync(challengerDir, { recursive: true, force: true }));

  function ab(challenger: Partial<ChallengerProps> = {}, props: Partial<OnnxFunctionProps> = {}) {
    const stack = testStack();
    const models = new ModelBucket(stack, 'Models');
    const artifact = new ModelArtifact(stack, 'Iris', { bucket: models.bucket, modelDir: IRIS_DIR });
    const next = new ModelArtifact(stack, 'IrisNext', { bucket: models.bucket, modelDir: challengerDir });
    const fn = new OnnxFunction(stack, 'Inference', {
      artifact,
      challenger: { model: next, weight: 0.1, ...challenger },
      ...props,
    });
    return { stack, fn, t: template(stack) };
  }

  test('the live alias sends the weight to a second version that serves the challenger', () => {
    const { t, fn } = ab();
    const variant = onlyResource(t, 'Custom::ModelVariantVersion');
    expect(variant.props).toMatchObject({
      VariantEnvironment: { MODEL_SHA256: SHA, MODEL_VARIANT: 'challenger' },
      PrimaryEnvironment: { MODEL_SHA256: SHA, MODEL_VARIANT: 'primary' },
      Description: 'iris 1.2.0 (A/B variant challenger)',
      FunctionName: { Ref: expect.stringMatching(/^InferenceFunction/) as unknown },
      PrimaryVersion: {
        'Fn::GetAtt': [expect.stringMatching(/^InferenceFunctionCurrentVersion/), 'Version'],
      },
    });
    const variantEnv = variant.props.VariantEnvironment as Record<string, unknown>;
    expect(JSON.stringify(variantEnv.MODEL_URI)).toContain('/iris/1.2.0/');
    expect(JSON.stringify((variant.props.PrimaryEnvironment as Record<string, unknown>).MODEL_URI)).toContain(
      '/iris/1.1.0/',
    );
    t.hasResource('Custom::ModelVariantVersion', { DeletionPolicy: 'Retain' });
    const alias = onlyResource(t, 'AWS::Lambda::Alias').props;
    expect(alias).toMatchObject({
      Name: 'live',
      FunctionVersion: {
        'Fn::GetAtt': [expect.stringMatching(/^InferenceFunctionCurrentVersion/), 'Version'],
      },
      RoutingConfig: {
        AdditionalVersionWeights: [
          { FunctionVersion: { 'Fn::GetAtt': [variant.logicalId, 'Version'] }, FunctionWeight: 0.1 },
        ],
      },
    });
    const env = (inferenceProps(t).Environment as { Variables: Record<string, unknown> }).Variables;
    expect(env.MODEL_VARIANT).toBe('primary');
    const variants = JSON.stringify(env.MODEL_VARIANTS);
    expect(variants).toContain('\\"challenger\\":{\\"uri\\":\\"s3://');
    expect(variants).toContain('/iris/1.2.0/');
    expect(fn.variants.map((v) => [v.name, v.weight, v.modelVersion])).toEqual([
      ['primary', 0.9, '1.1.0'],
      ['challenger', 0.1, '1.2.0'],
    ]);
  });

  test('the variant publisher may change and publish this function only; the function reads both models', () => {
    const { t } = ab();
    const policies = JSON.stringify(t.findResources('AWS::IAM::Policy'));
    expect(policies).toContain('lambda:PublishVersion');
    const publisher = Object.entries(t.findResources('AWS::IAM::Policy')).find(([, p]) =>
      JSON.stringify(p).includes('lambda:PublishVersion'),
    );
    const statement = (
      publisher?.[1] as { Properties: { PolicyDocument: { Statement: Record<string, unknown>[] } } }
    ).Properties.PolicyDocument.Statement.find((s) => JSON.stringify(s).includes('PublishVersion'));
    expect(statement).toEqual({
      Action: [
        'lambda:GetFunctionConfiguration',
        'lambda:UpdateFunctionConfiguration',
        'lambda:PublishVersion',
      ],
      Effect: 'Allow',
      Resource: { 'Fn::GetAtt': [expect.stringMatching(/^InferenceFunction/), 'Arn'] },
    });
    const reads = JSON.stringify(t.findResources('AWS::IAM::Policy'));
    expect(reads).toContain('/iris/1.1.0/model.onnx');
    expect(reads).toContain('/iris/1.2.0/model.onnx');
  });

  test('per-variant metrics use the executed version of the live alias', () => {
    const { fn, stack } = ab();
    const metric = fn.metricVariant('challenger', 'Errors');
    const dims = stack.resolve(metric.dimensions) as Record<string, unknown>;
    expect(dims.Resource).toEqual({ 'Fn::Join': ['', [{ Ref: expect.any(String) as unknown }, ':live']] });
    expect(JSON.stringify(dims.ExecutedVersion)).toContain('Version');
    expect(() => fn.metricVariant('canary', 'Errors')).toThrow(
      /no variant 'canary'; it has primary, challenger/,
    );
  });

  test.each([
    [{ weight: 0 }, {}, /challenger.weight must be more than 0 and less than 1 .* got 0/],
    [{ weight: 1 }, {}, /got 1$/],
    [{ name: 'a b' }, {}, /challenger.name must be letters/],
    [{ name: 'primary' }, {}, /both named 'primary'/],
    [{}, { variantName: '' }, /variantName must be letters/],
  ])('names a bad A/B setting: %j %j', (challenger, props, message) => {
    expect(() => ab(challenger, props)).toThrow(message);
  });

  test('liveVersion pins the alias to a published version; a bad number or a challenger with it is refused', () => {
    const { t, fn } = withArtifact({ liveVersion: '12' });
    expect(onlyResource(t, 'AWS::Lambda::Alias').props.FunctionVersion).toBe('12');
    expect(fn.liveVersion.version).toBe('12');
    expect(() => withArtifact({ liveVersion: 'v12' })).toThrow(
      /liveVersion must be a published version number such as '12', got "v12"/,
    );
    expect(() => ab({}, { liveVersion: '3' })).toThrow(
      /liveVersion pins one version; it cannot be combined with a challenger/,
    );
  });

  test('each deploy publishes a version that is kept, described by its model', () => {
    const { t } = withArtifact();
    t.hasResource('AWS::Lambda::Version', {
      DeletionPolicy: 'Retain',
      Properties: { Description: 'iris 1.1.0' },
    });
  });

  test('variantName without a challenger is a mistake', () => {
    expect(() => withArtifact({ variantName: 'blue' })).toThrow(/variantName .* but there is no challenger/);
  });
});
