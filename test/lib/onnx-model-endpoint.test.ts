import * as cdkLib from 'aws-cdk-lib';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import { ApiAuthorization } from '../../lib/inference-api';
import { TrafficShiftType } from '../../lib/canary-release';
import { ModelSource } from '../../lib/model-source';
import { ModelDelivery, OnnxModelEndpoint, ServingBackend } from '../../lib/onnx-model-endpoint';
import { copyModel, IRIS_DIR, onlyResource, template, testStack } from '../support/cdk';

function containerEnv(t: ReturnType<typeof template>): Record<string, unknown> {
  const defs = onlyResource(t, 'AWS::ECS::TaskDefinition').props.ContainerDefinitions as {
    Environment: { Name: string; Value: unknown }[];
  }[];
  return Object.fromEntries((defs[0]?.Environment ?? []).map((e) => [e.Name, e.Value]));
}

describe('OnnxModelEndpoint', () => {
  test('one `new` gives bucket, model version, function, authenticated API and alarms', () => {
    const stack = testStack();
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', { modelDir: IRIS_DIR });
    const t = template(stack);
    t.resourceCountIs('Custom::ModelVersion', 1);
    t.resourceCountIs('AWS::S3::Bucket', 2);
    t.resourceCountIs('AWS::Lambda::Alias', 1);
    t.resourceCountIs('AWS::ApiGateway::RestApi', 1);
    t.resourceCountIs('AWS::CloudWatch::Alarm', 8);
    t.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    t.resourceCountIs('AWS::SNS::Topic', 1);
    for (const m of Object.values(t.findResources('AWS::ApiGateway::Method'))) {
      expect((m as { Properties: { AuthorizationType: string } }).Properties.AuthorizationType).toBe(
        'AWS_IAM',
      );
    }
    // the API calls the live alias, not $LATEST
    expect(JSON.stringify(t.findResources('AWS::ApiGateway::Method'))).toContain('InferenceLive');
    expect(endpoint.modelName).toBe('iris');
    expect(endpoint.artifact?.version).toBe('1.1.0');
    expect(endpoint.modelBucket?.bucket).toBeDefined();
    expect(endpoint.onnxFunction?.alias.aliasName).toBe('live');
    expect(endpoint.backend).toBe(ServingBackend.LAMBDA);
    expect(endpoint.containerService).toBeUndefined();
    t.resourceCountIs('AWS::ECS::Service', 0);
    expect(endpoint.monitoring.alarms).toHaveLength(8);
    expect(JSON.stringify(stack.resolve(endpoint.inferUrl))).toContain('v2/models/iris/infer');
  });

  test('bring your own bucket (with its key) and alarm topic', () => {
    const stack = testStack();
    const key = kms.Key.fromKeyArn(stack, 'Key', 'arn:aws:kms:us-east-1:123456789012:key/k1');
    const bucket = s3.Bucket.fromBucketAttributes(stack, 'Bucket', {
      bucketName: 'team-models',
      encryptionKey: key,
    });
    const topic = sns.Topic.fromTopicArn(stack, 'Ops', 'arn:aws:sns:us-east-1:123456789012:ops');
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      existingBucket: bucket,
      existingAlarmTopic: topic,
    });
    const t = template(stack);
    t.resourceCountIs('AWS::S3::Bucket', 0);
    t.resourceCountIs('AWS::SNS::Topic', 0);
    t.hasResourceProperties('Custom::ModelVersion', { DestinationBucket: 'team-models' });
    expect(endpoint.modelBucket?.bucket).toBe(bucket);
    expect(JSON.stringify(t.findResources('AWS::IAM::Policy'))).toContain('key/k1');
  });

  test('props reach the parts they configure', () => {
    const stack = testStack();
    new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      bucketProps: { removalPolicy: cdkLib.RemovalPolicy.DESTROY, autoDeleteObjects: true },
      functionProps: { memorySize: 4096 },
      apiProps: { authorization: ApiAuthorization.API_KEY, stageName: 'v1' },
      monitoringProps: { thresholds: { p99LatencyMs: 750 }, dashboard: false },
    });
    const t = template(stack);
    t.hasResourceProperties('AWS::Lambda::Function', { MemorySize: 4096 });
    t.hasResourceProperties('AWS::ApiGateway::Stage', { StageName: 'v1' });
    t.resourceCountIs('AWS::ApiGateway::ApiKey', 1);
    t.hasResourceProperties('AWS::CloudWatch::Alarm', { Threshold: 750 });
    t.resourceCountIs('AWS::CloudWatch::Dashboard', 0);
    t.resourceCountIs('Custom::S3AutoDeleteObjects', 2);
  });

  test('a bundled model needs no bucket, no publisher', () => {
    const stack = testStack();
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      delivery: ModelDelivery.BUNDLED,
    });
    const t = template(stack);
    t.resourceCountIs('AWS::S3::Bucket', 0);
    t.resourceCountIs('Custom::ModelVersion', 0);
    t.resourceCountIs('AWS::Lambda::Function', 1);
    expect(endpoint.modelBucket).toBeUndefined();
    expect(endpoint.onnxFunction?.modelUri).toBe('/var/task/model');
  });

  test('a custom integration replaces the Lambda proxy', () => {
    const stack = testStack();
    const integration = new apigw.HttpIntegration('http://10.0.0.1:8080/{proxy}', { proxy: true });
    new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      delivery: ModelDelivery.BUNDLED,
      integration,
    });
    const methods = JSON.stringify(template(stack).findResources('AWS::ApiGateway::Method'));
    expect(methods).toContain('HTTP_PROXY');
    expect(methods).not.toContain('AWS_PROXY');
  });

  test('the container backend: a Fargate service pulls the version, behind the same API, no inference Lambda', () => {
    const stack = testStack();
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      backend: ServingBackend.CONTAINER,
    });
    const t = template(stack);
    expect(endpoint.backend).toBe(ServingBackend.CONTAINER);
    expect(endpoint.onnxFunction).toBeUndefined();
    expect(endpoint.containerService?.modelName).toBe('iris');
    expect(endpoint.modelName).toBe('iris');
    t.resourceCountIs('AWS::ECS::Service', 1);
    t.resourceCountIs('Custom::ModelVersion', 1);
    // the one function left is the model publisher
    t.resourceCountIs('AWS::Lambda::Function', 1);
    t.resourceCountIs('AWS::Lambda::Alias', 0);
    const env = containerEnv(t);
    expect(env.MODEL_URI).toEqual(stack.resolve(endpoint.artifact?.s3Uri));
    // API Gateway puts the stage in front of the path it sends through the VPC link
    expect(env.PATH_PREFIX).toBe('/api');
    const methods = Object.values(t.findResources('AWS::ApiGateway::Method')).map(
      (m) =>
        (m as { Properties: { AuthorizationType: string; Integration: Record<string, unknown> } }).Properties,
    );
    expect(methods).toHaveLength(9);
    for (const m of methods) {
      expect(m.AuthorizationType).toBe('AWS_IAM');
      expect(m.Integration).toMatchObject({ Type: 'HTTP_PROXY', ConnectionType: 'VPC_LINK' });
    }
    expect(endpoint.monitoring.alarms).toHaveLength(9);
    expect(endpoint.monitoring.unhealthyHostsAlarm).toBeDefined();
    expect(JSON.stringify(stack.resolve(endpoint.inferUrl))).toContain('v2/models/iris/infer');
  });

  test('the container backend: containerProps reach the service; the stage name becomes its path prefix', () => {
    const stack = testStack();
    new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      backend: ServingBackend.CONTAINER,
      containerProps: { cpu: 2048, memoryLimitMiB: 4096, batching: { maxBatchSize: 8, maxLatencyMs: 2 } },
      apiProps: { stageName: 'v1' },
    });
    const t = template(stack);
    expect(onlyResource(t, 'AWS::ECS::TaskDefinition').props).toMatchObject({ Cpu: '2048', Memory: '4096' });
    expect(containerEnv(t)).toMatchObject({
      PATH_PREFIX: '/v1',
      BATCH_MAX_SIZE: '8',
      BATCH_MAX_LATENCY_MS: '2',
    });
  });

  test('the container backend with a bundled model bakes it into the image: no bucket, no MODEL_URI', () => {
    const stack = testStack();
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      backend: ServingBackend.CONTAINER,
      delivery: ModelDelivery.BUNDLED,
    });
    const t = template(stack);
    t.resourceCountIs('Custom::ModelVersion', 0);
    t.resourceCountIs('AWS::Lambda::Function', 0);
    expect(endpoint.modelBucket).toBeUndefined();
    expect(containerEnv(t).MODEL_URI).toBeUndefined();
    expect(endpoint.containerService?.modelUri).toBe('/opt/ml/model');
  });

  test('the version lock file reaches the artifact', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mdk-endpoint-lock-'));
    try {
      const lock = path.join(dir, 'versions.json');
      new OnnxModelEndpoint(testStack(), 'Iris', { modelDir: IRIS_DIR, versionLockFile: lock });
      expect(Object.keys((JSON.parse(fs.readFileSync(lock, 'utf8')) as { iris: object }).iris)).toEqual([
        '1.1.0',
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('descriptions are props', () => {
    const stack = testStack();
    new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      delivery: ModelDelivery.BUNDLED,
      functionProps: { description: 'fraud scorer' },
      apiProps: { description: 'fraud API' },
    });
    const t = template(stack);
    t.hasResourceProperties('AWS::Lambda::Function', { Description: 'fraud scorer' });
    t.hasResourceProperties('AWS::ApiGateway::RestApi', { Description: 'fraud API' });
  });

  test('bucket props with bundled delivery are refused', () => {
    const stack = testStack();
    expect(
      () =>
        new OnnxModelEndpoint(stack, 'Iris', {
          modelDir: IRIS_DIR,
          delivery: ModelDelivery.BUNDLED,
          existingBucket: s3.Bucket.fromBucketName(stack, 'B', 'team-models'),
        }),
    ).toThrow(
      /existingBucket, bucketProps and versionLockFile apply to S3 delivery, but delivery is BUNDLED/,
    );
  });
  test.each<[string, Partial<ConstructorParameters<typeof OnnxModelEndpoint>[2]>, RegExp]>([
    [
      'function props with the container backend',
      { backend: ServingBackend.CONTAINER, functionProps: { memorySize: 4096 } },
      /functionProps and integration apply to the LAMBDA backend, but backend is CONTAINER/,
    ],
    [
      'an integration with the container backend',
      {
        backend: ServingBackend.CONTAINER,
        integration: new apigw.HttpIntegration('http://10.0.0.1:8080/{proxy}', { proxy: true }),
      },
      /functionProps and integration apply to the LAMBDA backend, but backend is CONTAINER/,
    ],
    [
      'container props with the Lambda backend',
      { containerProps: { cpu: 2048, memoryLimitMiB: 4096 } },
      /containerProps apply to the CONTAINER backend, but backend is LAMBDA/,
    ],
    [
      'a challenger with the container backend',
      { backend: ServingBackend.CONTAINER, challenger: { modelDir: IRIS_DIR, weight: 0.1 } },
      /challenger \(A\/B\) needs the LAMBDA backend, whose alias splits traffic; backend is CONTAINER/,
    ],
    [
      'a challenger with bundled delivery',
      { delivery: ModelDelivery.BUNDLED, challenger: { modelDir: IRIS_DIR, weight: 0.1 } },
      /challenger \(A\/B\) needs S3 delivery/,
    ],
    [
      'a challenger with neither folder nor source',
      { challenger: { weight: 0.1 } },
      /give the challenger exactly one of modelDir or modelSource, got neither/,
    ],
    [
      'a challenger and a release',
      { challenger: { modelDir: IRIS_DIR, weight: 0.1 }, release: {} },
      /release and challenger cannot be combined: CodeDeploy shifts the live alias's weights itself/,
    ],
    [
      'a release with the container backend',
      { backend: ServingBackend.CONTAINER, release: {} },
      /release \(CodeDeploy\) applies to the LAMBDA backend/,
    ],
    [
      'a registry model with bundled delivery',
      {
        modelDir: undefined,
        modelSource: ModelSource.fromRegistry('iris-models'),
        delivery: ModelDelivery.BUNDLED,
      },
      /delivery BUNDLED needs a model folder at synth/,
    ],
    [
      'both a folder and a source',
      { modelSource: ModelSource.fromFolder(IRIS_DIR) },
      /give exactly one of modelDir, modelSource or model, got 2/,
    ],
  ])('%s is refused', (_name, props, message) => {
    expect(() => new OnnxModelEndpoint(testStack(), 'Iris', { modelDir: IRIS_DIR, ...props })).toThrow(
      message,
    );
  });
});

describe('OnnxModelEndpoint releases', () => {
  const nextDir = copyModel({ manifest: (m) => (m.version = '1.2.0') });
  afterAll(() => fs.rmSync(nextDir, { recursive: true, force: true }));

  test('a challenger: a second model version in the same bucket, split by the alias, with per-variant alarms', () => {
    const stack = testStack();
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      challenger: { modelDir: nextDir, weight: 0.2, name: 'next' },
      variantName: 'current',
    });
    const t = template(stack);
    t.resourceCountIs('Custom::ModelVersion', 2);
    t.resourceCountIs('Custom::ModelVariantVersion', 1);
    expect(endpoint.challengerArtifact?.version).toBe('1.2.0');
    expect(endpoint.onnxFunction?.variants.map((v) => [v.name, v.weight])).toEqual([
      ['current', 0.8],
      ['next', 0.2],
    ]);
    expect(Object.keys(endpoint.monitoring.variantAlarms)).toEqual(['current', 'next']);
    const alias = onlyResource(t, 'AWS::Lambda::Alias').props as { RoutingConfig: unknown };
    expect(JSON.stringify(alias.RoutingConfig)).toContain('"FunctionWeight":0.2');
    expect(endpoint.release).toBeUndefined();
  });

  test('a release: CodeDeploy shifts traffic and rolls back on the release alarms, which watch the new version', () => {
    const stack = testStack();
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      release: { trafficShift: { type: TrafficShiftType.LINEAR, percent: 20, intervalMinutes: 2 } },
    });
    const t = template(stack);
    const m = endpoint.monitoring;
    expect(m.newVersionErrorRateAlarm).toBeDefined();
    expect(m.releaseAlarms).toEqual([
      m.newVersionErrorRateAlarm,
      m.newVersionDurationAlarm,
      m.errorRateAlarm,
      m.durationAlarm,
      m.modelLoadFailuresAlarm,
    ]);
    const group = onlyResource(t, 'AWS::CodeDeploy::DeploymentGroup').props as {
      AlarmConfiguration: { Enabled: boolean; Alarms: { Name: unknown }[] };
      AutoRollbackConfiguration: { Enabled: boolean; Events: string[] };
    };
    expect(group.AlarmConfiguration.Enabled).toBe(true);
    expect(group.AlarmConfiguration.Alarms.map((a) => a.Name)).toEqual(
      m.releaseAlarms.map((a) => stack.resolve(a.alarmName) as unknown),
    );
    expect(group.AutoRollbackConfiguration.Events).toEqual(
      expect.arrayContaining(['DEPLOYMENT_FAILURE', 'DEPLOYMENT_STOP_ON_ALARM']),
    );
    t.hasResourceProperties('AWS::CodeDeploy::DeploymentConfig', {
      TrafficRoutingConfig: {
        Type: 'TimeBasedLinear',
        TimeBasedLinear: { LinearPercentage: 20, LinearInterval: 2 },
      },
    });
    // The new version's alarms look at one minute, once: a short canary can still trip them.
    const alarm = Object.values(t.findResources('AWS::CloudWatch::Alarm'))
      .map((a) => (a as { Properties: Record<string, unknown> }).Properties)
      .find((a) => String(a.AlarmDescription).includes('the version this deploy published: Lambda errors'));
    expect(alarm).toMatchObject({ EvaluationPeriods: 1, DatapointsToAlarm: 1 });
    expect(JSON.stringify(alarm)).toContain('"Period":60');
    expect(JSON.stringify(alarm)).toContain('ExecutedVersion');
    expect(endpoint.release?.preTrafficHook).toBeDefined();
    // A pin still goes through CodeDeploy, without the sample check of this deploy's manifest.
    const pinned = new OnnxModelEndpoint(testStack(), 'Iris', {
      modelDir: IRIS_DIR,
      functionProps: { liveVersion: '7' },
      release: {},
    });
    expect(pinned.release?.preTrafficHook).toBeUndefined();
    // The previous version serves during the canary and after a rollback: the role reads every version of the model.
    const reads = JSON.stringify(t.findResources('AWS::IAM::Policy'));
    expect(reads).toContain('/iris/*"');
  });

  test('every endpoint reads every version of its model, so a pinned or rolled-back version still loads', () => {
    const stack = testStack();
    new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      functionProps: { liveVersion: '3' },
    });
    const t = template(stack);
    expect(JSON.stringify(t.findResources('AWS::IAM::Policy'))).toContain('/iris/*"');
    const alias = onlyResource(t, 'AWS::Lambda::Alias').props;
    expect(alias.FunctionVersion).toBe('3');
  });
  test('the container backend rolls a deployment back when its release alarms fire', () => {
    const stack = testStack();
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      backend: ServingBackend.CONTAINER,
    });
    const service = onlyResource(template(stack), 'AWS::ECS::Service').props as {
      DeploymentConfiguration: {
        Alarms: { Enable: boolean; Rollback: boolean; AlarmNames: unknown[] };
        DeploymentCircuitBreaker: { Enable: boolean; Rollback: boolean };
      };
    };
    const m = endpoint.monitoring;
    expect(JSON.stringify(template(stack).findResources('AWS::IAM::Policy'))).toContain('/iris/*"');
    expect(service.DeploymentConfiguration.DeploymentCircuitBreaker).toEqual({
      Enable: true,
      Rollback: true,
    });
    expect(service.DeploymentConfiguration.Alarms).toEqual({
      Enable: true,
      Rollback: true,
      AlarmNames: [m.target5xxAlarm, m.unhealthyHostsAlarm, m.modelLoadFailuresAlarm, m.api5xxAlarm].map(
        (a) => stack.resolve(a?.alarmName) as unknown,
      ),
    });
  });

  test('a registry model: resolved at deploy, the function reads the resolved version', () => {
    const stack = testStack();
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', {
      modelSource: ModelSource.fromRegistry('iris-models', { modelName: 'iris' }),
    });
    const t = template(stack);
    t.resourceCountIs('Custom::ModelVersion', 0);
    const resolved = onlyResource(t, 'Custom::RegistryModel');
    expect(resolved.props).toMatchObject({ GroupName: 'iris-models', ModelName: 'iris' });
    const fn = Object.values(t.findResources('AWS::Lambda::Function'))
      .map((f) => (f as { Properties: { Environment?: { Variables: Record<string, unknown> } } }).Properties)
      .find((f) => f.Environment?.Variables.MODEL_URI !== undefined);
    expect(fn?.Environment?.Variables.MODEL_URI).toEqual({ 'Fn::GetAtt': [resolved.logicalId, 'S3Uri'] });
    expect(fn?.Environment?.Variables.MODEL_SHA256).toEqual({ 'Fn::GetAtt': [resolved.logicalId, 'Sha256'] });
    expect(endpoint.modelName).toBe('iris');
  });
});

describe('OnnxModelEndpoint data capture and drift', () => {
  const CAPTURE_PATTERN = '{ $.mdk_capture = 1 }';
  function fnEnv(t: ReturnType<typeof template>): Record<string, unknown> {
    const serving = Object.values(t.findResources('AWS::Lambda::Function'))
      .map((f) => (f as { Properties: { Environment?: { Variables: Record<string, unknown> } } }).Properties)
      .filter((f) => f.Environment?.Variables.MODEL_SHA256 !== undefined);
    expect(serving).toHaveLength(1);
    return serving[0]?.Environment?.Variables ?? {};
  }

  test("Lambda backend: the function's log group feeds the capture stream, the function gets the CAPTURE_* environment", () => {
    const stack = testStack();
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      capture: { samplePercent: 12.5, redact: ['sepal_width'], hash: ['petal_width'], maxRowsPerRequest: 50 },
    });
    const t = template(stack);
    expect(fnEnv(t)).toMatchObject({
      CAPTURE_PERCENT: '12.5',
      CAPTURE_REDACT: 'sepal_width',
      CAPTURE_HASH: 'petal_width',
      CAPTURE_MAX_ROWS: '50',
    });
    const filter = onlyResource(t, 'AWS::Logs::SubscriptionFilter').props;
    expect(filter.FilterPattern).toBe(CAPTURE_PATTERN);
    expect(filter.LogGroupName).toEqual(stack.resolve(endpoint.onnxFunction?.logGroup.logGroupName));
    expect(filter.DestinationArn).toEqual(stack.resolve(endpoint.capture?.deliveryStream.deliveryStreamArn));
    t.resourceCountIs('AWS::KinesisFirehose::DeliveryStream', 1);
    expect(endpoint.capture?.bucket).toBeDefined();
    // The delivery path's own health is on the endpoint's dashboard.
    const body = JSON.stringify(t.findResources('AWS::CloudWatch::Dashboard'));
    for (const metric of ['IncomingRecords', 'DeliveryToS3.Records', 'DeliveryToS3.DataFreshness'])
      expect(body).toContain(metric);
    // Delivery that stalls or a transform that fails alarms on the topic, shows on the dashboard, and never rolls back.
    const alarms = endpoint.captureAlarms.map((a) => {
      const id = stack.resolve((a.node.defaultChild as cdkLib.CfnResource).logicalId) as string;
      expect(body).toContain(`{"Fn::GetAtt":["${id}","Arn"]}`);
      expect(endpoint.monitoring.releaseAlarms).not.toContain(a);
      const r = (t.toJSON() as { Resources: Record<string, { Properties: Record<string, unknown> }> })
        .Resources;
      return r[id]?.Properties;
    });
    expect(alarms).toEqual([
      expect.objectContaining({
        MetricName: 'DeliveryToS3.DataFreshness',
        Namespace: 'AWS/Firehose',
        Statistic: 'Maximum',
        Threshold: 900,
        EvaluationPeriods: 3,
        DatapointsToAlarm: 2,
        TreatMissingData: 'notBreaching',
        AlarmActions: [stack.resolve(endpoint.monitoring.alarmTopic.topicArn)],
      }),
      expect.objectContaining({
        MetricName: 'CaptureRecordsFailed',
        Namespace: 'ModelDeployKit',
        Threshold: 1,
        ComparisonOperator: 'GreaterThanOrEqualToThreshold',
      }),
    ]);
    // No drift asked for: no job, no drift alarms.
    expect(endpoint.drift).toBeUndefined();
    t.resourceCountIs('AWS::Events::Rule', 0);
    expect(endpoint.monitoring.alarms).toHaveLength(8);
  });

  test("container backend: the tasks' log group feeds the stream, the container gets the environment", () => {
    const stack = testStack();
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      backend: ServingBackend.CONTAINER,
      containerProps: { environment: { EXTRA: 'kept' } },
      capture: { samplePercent: 0 },
    });
    const t = template(stack);
    expect(containerEnv(t)).toMatchObject({ CAPTURE_PERCENT: '0', EXTRA: 'kept' });
    expect(containerEnv(t).CAPTURE_REDACT).toBeUndefined();
    const filter = onlyResource(t, 'AWS::Logs::SubscriptionFilter').props;
    expect(filter.FilterPattern).toBe(CAPTURE_PATTERN);
    expect(filter.LogGroupName).toEqual(stack.resolve(endpoint.containerService?.logGroup.logGroupName));
  });

  test("drift: a job on the endpoint's model bucket, alarming on the monitoring's topic, drawn on its dashboard", () => {
    const stack = testStack();
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      capture: { samplePercent: 100 },
      drift: { thresholds: { featurePsi: 0.3 } },
    });
    const t = template(stack);
    const drift = endpoint.drift;
    expect(drift).toBeDefined();
    const job = Object.values(t.findResources('AWS::Lambda::Function'))
      .map((f) => (f as { Properties: { Environment?: { Variables: Record<string, unknown> } } }).Properties)
      .find((f) => f.Environment?.Variables.CAPTURE_BUCKET !== undefined);
    expect(job?.Environment?.Variables).toMatchObject({
      MODEL_BUCKET: stack.resolve(endpoint.modelBucket?.bucket.bucketName) as unknown,
      CAPTURE_BUCKET: stack.resolve(endpoint.capture?.bucket.bucketName) as unknown,
      MODEL_NAME: 'iris',
      PSI_THRESHOLD: '0.3',
    });
    const topic = stack.resolve(endpoint.monitoring.alarmTopic.topicArn) as unknown;
    for (const a of drift?.alarms ?? []) {
      const id = stack.resolve((a.node.defaultChild as cdkLib.CfnResource).logicalId) as string;
      const resources = (
        t.toJSON() as { Resources: Record<string, { Properties: { AlarmActions: unknown[] } }> }
      ).Resources;
      const props = resources[id]?.Properties;
      expect(props?.AlarmActions).toEqual([topic]);
    }
    const body = JSON.stringify(t.findResources('AWS::CloudWatch::Dashboard'));
    t.resourceCountIs('AWS::CloudWatch::Dashboard', 1);
    expect(body).toContain('Feature drift (PSI per feature)');
    expect(body).toContain('MetricName=\\\\\\"FeaturePSI\\\\\\" model=\\\\\\"iris\\\\\\"');
    for (const a of drift?.alarms ?? []) {
      const id = stack.resolve((a.node.defaultChild as cdkLib.CfnResource).logicalId) as string;
      expect(body).toContain(`{"Fn::GetAtt":["${id}","Arn"]}`);
    }
    // Drift is watched, not a reason to roll back.
    expect(endpoint.monitoring.alarms).toHaveLength(8);
    for (const a of drift?.alarms ?? []) expect(endpoint.monitoring.releaseAlarms).not.toContain(a);
  });

  test('A/B: the one function carries the capture environment, so both variants capture', () => {
    const next = copyModel({ manifest: (m) => (m.version = '9.9.9') });
    try {
      const stack = testStack();
      new OnnxModelEndpoint(stack, 'Iris', {
        modelDir: IRIS_DIR,
        challenger: { modelDir: next, weight: 0.5 },
        capture: { samplePercent: 5, redact: ['input'] },
      });
      const t = template(stack);
      expect(fnEnv(t)).toMatchObject({ CAPTURE_PERCENT: '5', CAPTURE_REDACT: 'input' });
      t.resourceCountIs('AWS::Logs::SubscriptionFilter', 1);
    } finally {
      fs.rmSync(next, { recursive: true, force: true });
    }
  });

  test('a bundled model can capture (no drift job: the baselines are not in a bucket)', () => {
    const stack = testStack();
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      delivery: ModelDelivery.BUNDLED,
      capture: { samplePercent: 1 },
    });
    expect(endpoint.capture).toBeDefined();
    expect(fnEnv(template(stack)).CAPTURE_PERCENT).toBe('1');
  });

  test('a registry model: names are checked by the server only, and the drift job reads the resolved model', () => {
    const stack = testStack();
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', {
      modelSource: ModelSource.fromRegistry('iris-models'),
      capture: { samplePercent: 1, redact: ['anything'] },
      drift: {},
    });
    const t = template(stack);
    const resolved = onlyResource(t, 'Custom::RegistryModel').logicalId;
    expect(fnEnv(t).CAPTURE_REDACT).toBe('anything');
    const job = Object.values(t.findResources('AWS::Lambda::Function'))
      .map((f) => (f as { Properties: { Environment?: { Variables: Record<string, unknown> } } }).Properties)
      .find((f) => f.Environment?.Variables.CAPTURE_BUCKET !== undefined);
    expect(job?.Environment?.Variables.MODEL_NAME).toEqual({ 'Fn::GetAtt': [resolved, 'ModelName'] });
    expect(JSON.stringify(t.findResources('AWS::CloudWatch::Dashboard'))).toContain(resolved);
    expect(endpoint.drift?.modelName).toBe(endpoint.modelName);
  });

  test('the capture bucket can be brought in', () => {
    const stack = testStack();
    const bucket = s3.Bucket.fromBucketName(stack, 'Captures', 'team-captures');
    const endpoint = new OnnxModelEndpoint(stack, 'Iris', {
      modelDir: IRIS_DIR,
      capture: { samplePercent: 1, existingBucket: bucket },
    });
    expect(endpoint.capture?.bucket).toBe(bucket);
    expect(JSON.stringify(template(stack).findResources('AWS::KinesisFirehose::DeliveryStream'))).toContain(
      'team-captures',
    );
  });

  test.each<[string, Partial<ConstructorParameters<typeof OnnxModelEndpoint>[2]>, RegExp]>([
    [
      'drift without capture',
      { drift: {} },
      /drift reads the captured rows; give capture too \(samplePercent 0 keeps it off\)/,
    ],
    [
      'drift of a bundled model',
      { delivery: ModelDelivery.BUNDLED, capture: { samplePercent: 1 }, drift: {} },
      /drift needs S3 delivery: the drift job reads each version's baseline \(model.json\) from the model bucket/,
    ],
    [
      'a negative percentage',
      { capture: { samplePercent: -1 } },
      /capture.samplePercent must be a number from 0 to 100, got -1/,
    ],
    [
      'a percentage over 100',
      { capture: { samplePercent: 101 } },
      /capture.samplePercent must be a number from 0 to 100, got 101/,
    ],
    [
      'no percentage',
      { capture: { samplePercent: NaN } },
      /capture.samplePercent must be a number from 0 to 100, got NaN/,
    ],
    [
      'zero rows per request',
      { capture: { samplePercent: 1, maxRowsPerRequest: 0 } },
      /capture.maxRowsPerRequest must be a positive integer, got 0/,
    ],
    [
      'a name both redacted and hashed',
      { capture: { samplePercent: 1, redact: ['sepal_width'], hash: ['sepal_width'] } },
      /'sepal_width' is in both capture.redact and capture.hash; choose one/,
    ],
    [
      'a misspelt name',
      { capture: { samplePercent: 1, redact: ['petal_lenght'] } },
      /capture names 'petal_lenght' are neither inputs nor baseline features of iris 1\.\d+\.\d+; it has 'input', 'sepal_length'/,
    ],
    [
      'a list in one name',
      { capture: { samplePercent: 1, hash: ['sepal_width,petal_width'] } },
      /capture.redact and capture.hash take input or feature names \(no commas or spaces around them\), got "sepal_width,petal_width"/,
    ],
  ])('%s is refused', (_name, props, message) => {
    expect(() => new OnnxModelEndpoint(testStack(), 'Iris', { modelDir: IRIS_DIR, ...props })).toThrow(
      message,
    );
  });
});
