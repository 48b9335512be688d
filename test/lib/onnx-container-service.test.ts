import * as fs from 'node:fs';
import * as cdk from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { AwsSolutionsChecks } from 'cdk-nag';
import { InferenceApi } from '../../lib/inference-api';
import { ModelArtifact } from '../../lib/model-artifact';
import { ModelBucket } from '../../lib/model-bucket';
import { OnnxContainerService, type OnnxContainerServiceProps } from '../../lib/onnx-container-service';
import { copyModel, IRIS_DIR, onlyResource, template, testApp, testStack } from '../support/cdk';
import { annotations, cfnLintErrors, templateFiles } from '../support/checks';

/** A model version in a bucket, and the service that pulls it. */
function build(props: Partial<OnnxContainerServiceProps> = {}, stack: cdk.Stack = testStack()) {
  const bucket = new ModelBucket(stack, 'Models', { removalPolicy: cdk.RemovalPolicy.DESTROY });
  const artifact = new ModelArtifact(stack, 'Model', { bucket: bucket.bucket, modelDir: IRIS_DIR });
  const service = new OnnxContainerService(stack, 'Server', { artifact, ...props });
  return {
    stack,
    service,
    artifact,
    bucket,
    get t() {
      return template(stack);
    },
  };
}

function baked(props: Partial<OnnxContainerServiceProps> = {}, stack: cdk.Stack = testStack()) {
  const service = new OnnxContainerService(stack, 'Server', { bakedModelDir: IRIS_DIR, ...props });
  return {
    stack,
    service,
    get t() {
      return template(stack);
    },
  };
}

type ContainerDefinition = {
  Environment: { Name: string; Value: unknown }[];
  [key: string]: unknown;
};
function container(t: ReturnType<typeof template>): ContainerDefinition {
  const { props } = onlyResource(t, 'AWS::ECS::TaskDefinition');
  const defs = props.ContainerDefinitions as ContainerDefinition[];
  expect(defs).toHaveLength(1);
  return defs[0] as ContainerDefinition;
}
function env(t: ReturnType<typeof template>): Record<string, unknown> {
  return Object.fromEntries(container(t).Environment.map((e) => [e.Name, e.Value]));
}

type Rule = {
  IpProtocol: string;
  FromPort?: number;
  ToPort?: number;
  CidrIp?: string;
  GroupId?: unknown;
  SourceSecurityGroupId?: unknown;
  DestinationSecurityGroupId?: unknown;
};
function rules(t: ReturnType<typeof template>, type: string): Rule[] {
  return Object.values(t.findResources(type)).map((r) => (r as { Properties: Rule }).Properties);
}
function groupId(stack: cdk.Stack, group: ec2.ISecurityGroup): unknown {
  return stack.resolve(group.securityGroupId);
}

describe('OnnxContainerService', () => {
  test('Fargate on arm64 Linux, in a new cluster with Container Insights, rolling back a failed deployment', () => {
    const { t, service } = build();
    const { props: task } = onlyResource(t, 'AWS::ECS::TaskDefinition');
    expect(task).toMatchObject({
      RequiresCompatibilities: ['FARGATE'],
      NetworkMode: 'awsvpc',
      Cpu: '1024',
      Memory: '2048',
      RuntimePlatform: { CpuArchitecture: 'ARM64', OperatingSystemFamily: 'LINUX' },
    });
    expect(task.EphemeralStorage).toBeUndefined();
    t.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
    const { props: svc } = onlyResource(t, 'AWS::ECS::Service');
    expect(svc).toMatchObject({
      LaunchType: 'FARGATE',
      DesiredCount: 1,
      HealthCheckGracePeriodSeconds: 60,
      EnableExecuteCommand: false,
      DeploymentConfiguration: {
        DeploymentCircuitBreaker: { Enable: true, Rollback: true },
        MinimumHealthyPercent: 100,
        MaximumPercent: 200,
      },
      NetworkConfiguration: { AwsvpcConfiguration: { AssignPublicIp: 'DISABLED' } },
      LoadBalancers: [{ ContainerName: 'Server', ContainerPort: 8080 }],
    });
    expect(service.cpuArchitecture).toBe(ecs.CpuArchitecture.ARM64);
    expect(service.modelName).toBe('iris');
    expect(service.modelVersion).toBe('1.1.0');
  });

  test('the container: read-only root with a /tmp volume, non-root, health check, drain under the stop timeout', () => {
    const { t } = build();
    const c = container(t);
    expect(c).toMatchObject({
      Name: 'Server',
      Essential: true,
      User: '1000',
      ReadonlyRootFilesystem: true,
      StopTimeout: 30,
      PortMappings: [{ ContainerPort: 8080, Protocol: 'tcp' }],
      HealthCheck: {
        Command: ['CMD', 'node', '/app/healthcheck.mjs'],
        StartPeriod: 60,
        Retries: 3,
      },
      MountPoints: [{ ContainerPath: '/tmp', SourceVolume: 'tmp', ReadOnly: false }],
      LogConfiguration: {
        LogDriver: 'awslogs',
        Options: { 'awslogs-stream-prefix': 'server', mode: 'non-blocking' },
      },
    });
    const { props: task } = onlyResource(t, 'AWS::ECS::TaskDefinition');
    expect(task.Volumes).toEqual([{ Name: 'tmp' }]);
    // its log group keeps 30 days and goes with the stack
    const logGroupRef = (c.LogConfiguration as { Options: Record<string, unknown> }).Options['awslogs-group'];
    const [logGroupId] = Object.entries(t.findResources('AWS::Logs::LogGroup')).find(
      ([id]) => JSON.stringify({ Ref: id }) === JSON.stringify(logGroupRef),
    ) as [string, unknown];
    t.hasResource('AWS::Logs::LogGroup', {
      Properties: { RetentionInDays: 30 },
      DeletionPolicy: 'Delete',
    });
    expect(logGroupId).toMatch(/^ServerLogs/);
  });

  test('the environment: the model version and its sha256, the drain timeout, no batching by default', () => {
    const { t, stack, artifact } = build();
    const e = env(t);
    expect(e).toMatchObject({
      MODEL_URI: stack.resolve(artifact.s3Uri) as unknown,
      MODEL_SHA256: artifact.sha256,
      MODEL_NAME: 'iris',
      DRAIN_TIMEOUT_MS: '25000',
      LOG_LEVEL: 'INFO',
      LOG_PAYLOADS: 'false',
      AWS_REGION: 'us-east-1',
      // One onnxruntime thread per vCPU of the default 1024-unit task, not spinning while idle.
      ORT_INTRA_OP_THREADS: '1',
      ORT_ALLOW_SPINNING: 'false',
    });
    for (const unset of [
      // The container writes no EMF: nothing would extract it from awslogs.
      'POWERTOOLS_METRICS_NAMESPACE',
      'BATCH_MAX_SIZE',
      'BATCH_MAX_LATENCY_MS',
      'MAX_QUEUE',
      'PATH_PREFIX',
      'MAX_PAYLOAD_BYTES',
    ]) {
      expect(e[unset]).toBeUndefined();
    }
    // tasks start once the version is in the bucket
    const { logicalId } = onlyResource(t, 'AWS::ECS::Service');
    const dependsOn = (t.toJSON() as { Resources: Record<string, { DependsOn?: string[] }> }).Resources[
      logicalId
    ]?.DependsOn;
    expect(dependsOn).toEqual(
      expect.arrayContaining([stack.getLogicalId(artifact.resource.node.defaultChild as cdk.CfnResource)]),
    );
  });

  test('the task role may read the two objects of its model version and nothing else', () => {
    const { t, stack, service } = build();
    const roleRef = stack.resolve(service.taskRole.roleName) as unknown;
    const policies = Object.values(t.findResources('AWS::IAM::Policy'))
      .map(
        (p) =>
          (p as { Properties: { Roles: unknown[]; PolicyDocument: { Statement: unknown[] } } }).Properties,
      )
      .filter((p) => JSON.stringify(p.Roles) === JSON.stringify([roleRef]));
    expect(policies).toHaveLength(1);
    const statements = policies[0]?.PolicyDocument.Statement as {
      Action: string;
      Resource: unknown;
    }[];
    expect(statements.map((s) => s.Action)).toEqual(['s3:GetObject', 'kms:Decrypt']);
    const objects = JSON.stringify(statements[0]?.Resource);
    expect(objects).toContain('/iris/1.1.0/model.onnx');
    expect(objects).toContain('/iris/1.1.0/model.json');
    expect(JSON.stringify(statements)).not.toContain('*');
    t.hasResourceProperties('AWS::IAM::Role', {
      AssumeRolePolicyDocument: {
        Statement: [Match.objectLike({ Principal: { Service: 'ecs-tasks.amazonaws.com' } })],
      },
      Description: 'Runs the iris model server',
    });
    expect(JSON.stringify(t.findResources('AWS::IAM::Role'))).not.toContain('ManagedPolicyArns');
  });

  test('an internal ALB: drops invalid headers, logs to an SSE-S3 bucket, health-checks readiness', () => {
    const { t, stack, service } = build();
    const { props: alb } = onlyResource(t, 'AWS::ElasticLoadBalancingV2::LoadBalancer');
    expect(alb.Scheme).toBe('internal');
    const attributes = Object.fromEntries(
      (alb.LoadBalancerAttributes as { Key: string; Value: unknown }[]).map((a) => [a.Key, a.Value]),
    );
    expect(attributes).toMatchObject({
      'routing.http.drop_invalid_header_fields.enabled': 'true',
      'access_logs.s3.enabled': 'true',
      'access_logs.s3.prefix': 'alb',
      'access_logs.s3.bucket': stack.resolve(service.accessLogsBucket?.bucketName) as unknown,
    });
    t.hasResource('AWS::S3::Bucket', {
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
        },
        PublicAccessBlockConfiguration: Match.objectLike({
          BlockPublicAcls: true,
          RestrictPublicBuckets: true,
        }),
        LifecycleConfiguration: { Rules: [Match.objectLike({ ExpirationInDays: 365 })] },
      },
      DeletionPolicy: 'Retain',
    });
    // us-east-1's ELB account writes under alb/AWSLogs/<this account>/
    const policy = JSON.stringify(t.findResources('AWS::S3::BucketPolicy'));
    expect(policy).toContain(':iam::127311923021:root');
    expect(policy).toContain('/alb/AWSLogs/123456789012/*');
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', { Port: 80, Protocol: 'HTTP' });
    const { props: tg } = onlyResource(t, 'AWS::ElasticLoadBalancingV2::TargetGroup');
    expect(tg).toMatchObject({
      Port: 8080,
      Protocol: 'HTTP',
      TargetType: 'ip',
      HealthCheckPath: '/v2/health/ready',
      Matcher: { HttpCode: '200' },
      TargetGroupAttributes: expect.arrayContaining([
        { Key: 'deregistration_delay.timeout_seconds', Value: '30' },
      ]) as unknown,
    });
  });

  test('security groups: VPC link to ALB on 80, ALB to tasks on 8080, tasks out on 443 only, nothing open', () => {
    const { t, stack, service } = build();
    const linkGroup = groupId(stack, service.node.findChild('VpcLinkSecurityGroup') as ec2.ISecurityGroup);
    const albGroup = groupId(stack, service.loadBalancer.connections.securityGroups[0] as ec2.ISecurityGroup);
    const taskGroup = groupId(stack, service.service.connections.securityGroups[0] as ec2.ISecurityGroup);
    const ingress = rules(t, 'AWS::EC2::SecurityGroupIngress');
    // every ingress names a source group: no CIDR, no 0.0.0.0/0
    for (const rule of ingress) expect(rule.CidrIp).toBeUndefined();
    for (const g of Object.values(t.findResources('AWS::EC2::SecurityGroup'))) {
      expect(
        (g as { Properties: { SecurityGroupIngress?: unknown } }).Properties.SecurityGroupIngress,
      ).toBeUndefined();
    }
    const into = (group: unknown) =>
      ingress.filter((r) => JSON.stringify(r.GroupId) === JSON.stringify(group));
    expect(into(albGroup)).toEqual([
      expect.objectContaining({ FromPort: 80, ToPort: 80, SourceSecurityGroupId: linkGroup }),
    ]);
    expect(into(taskGroup)).toEqual([
      expect.objectContaining({ FromPort: 8080, ToPort: 8080, SourceSecurityGroupId: albGroup }),
    ]);
    const egress = rules(t, 'AWS::EC2::SecurityGroupEgress');
    const outOf = (group: unknown) =>
      egress.filter((r) => JSON.stringify(r.GroupId) === JSON.stringify(group));
    expect(outOf(linkGroup)).toEqual([
      expect.objectContaining({ FromPort: 80, ToPort: 80, DestinationSecurityGroupId: albGroup }),
    ]);
    expect(outOf(albGroup)).toEqual([
      expect.objectContaining({ FromPort: 8080, ToPort: 8080, DestinationSecurityGroupId: taskGroup }),
    ]);
    const taskProps = Object.values(t.findResources('AWS::EC2::SecurityGroup'))
      .map(
        (g) => (g as { Properties: { GroupDescription: string; SecurityGroupEgress?: Rule[] } }).Properties,
      )
      .find((g) => g.GroupDescription.startsWith('Model server tasks'));
    expect(taskProps?.SecurityGroupEgress).toEqual([
      expect.objectContaining({ CidrIp: '0.0.0.0/0', IpProtocol: 'tcp', FromPort: 443, ToPort: 443 }),
    ]);
  });

  test('its own VPC: two AZs, isolated subnets, no NAT, flow logs, endpoints for S3, ECR and Logs', () => {
    const { t, stack, service } = build();
    t.resourceCountIs('AWS::EC2::VPC', 1);
    t.resourceCountIs('AWS::EC2::Subnet', 2);
    t.resourceCountIs('AWS::EC2::NatGateway', 0);
    t.resourceCountIs('AWS::EC2::InternetGateway', 0);
    t.hasResourceProperties('AWS::EC2::FlowLog', { ResourceType: 'VPC', TrafficType: 'ALL' });
    const endpoints = Object.values(t.findResources('AWS::EC2::VPCEndpoint')).map(
      (e) => (e as { Properties: { ServiceName: unknown; VpcEndpointType?: string } }).Properties,
    );
    expect(JSON.stringify(endpoints.map((e) => e.ServiceName))).toMatch(/ecr\.api.*ecr\.dkr.*logs|s3/);
    expect(endpoints.filter((e) => e.VpcEndpointType === 'Interface')).toHaveLength(3);
    expect(endpoints.filter((e) => e.VpcEndpointType === 'Gateway')).toHaveLength(1);
    // the interface endpoints answer the tasks only
    const taskGroup = groupId(stack, service.service.connections.securityGroups[0] as ec2.ISecurityGroup);
    const endpointIngress = rules(t, 'AWS::EC2::SecurityGroupIngress').filter((r) => r.FromPort === 443);
    expect(endpointIngress).toEqual([expect.objectContaining({ SourceSecurityGroupId: taskGroup })]);
    // tasks start once they can pull and log
    const { logicalId } = onlyResource(t, 'AWS::ECS::Service');
    const dependsOn = (t.toJSON() as { Resources: Record<string, { DependsOn?: string[] }> }).Resources[
      logicalId
    ]?.DependsOn as string[];
    const endpointIds = Object.keys(t.findResources('AWS::EC2::VPCEndpoint'));
    expect(dependsOn).toEqual(expect.arrayContaining(endpointIds));
    // flow logs keep the same retention as the container's logs
    const flowLogs = JSON.stringify(t.findResources('AWS::EC2::FlowLog'));
    expect(flowLogs).toContain('ServerFlowLogs');
    // the container's and the flow logs' (the third is the model publisher's)
    expect(
      Object.keys(t.findResources('AWS::Logs::LogGroup')).filter((id) => id.startsWith('Server')),
    ).toHaveLength(2);
    expect(service.vpc.isolatedSubnets).toHaveLength(2);
  });

  test('autoscaling from min to max on CPU and on requests per task, with cooldowns', () => {
    const { t } = build({ minCapacity: 2, maxCapacity: 6 });
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
      MinCapacity: 2,
      MaxCapacity: 6,
      ScalableDimension: 'ecs:service:DesiredCount',
    });
    t.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 2 });
    const policies = Object.values(t.findResources('AWS::ApplicationAutoScaling::ScalingPolicy')).map(
      (p) =>
        (
          p as {
            Properties: {
              TargetTrackingScalingPolicyConfiguration: {
                PredefinedMetricSpecification: { PredefinedMetricType: string };
                TargetValue: number;
                ScaleInCooldown: number;
                ScaleOutCooldown: number;
              };
            };
          }
        ).Properties.TargetTrackingScalingPolicyConfiguration,
    );
    expect(
      policies.map((p) => [
        p.PredefinedMetricSpecification.PredefinedMetricType,
        p.TargetValue,
        p.ScaleInCooldown,
        p.ScaleOutCooldown,
      ]),
    ).toEqual([
      ['ECSServiceAverageCPUUtilization', 60, 300, 60],
      ['ALBRequestCountPerTarget', 3000, 300, 60],
    ]);
  });

  test('sizes, scaling, batching, queue, limits, logging and timeouts are props', () => {
    const { t } = build({
      cpuArchitecture: ecs.CpuArchitecture.X86_64,
      cpu: 4096,
      memoryLimitMiB: 16384,
      ephemeralStorageGiB: 50,
      minCapacity: 3,
      maxCapacity: 12,
      targetCpuPercent: 70,
      requestsPerTarget: 600,
      scaleInCooldown: cdk.Duration.minutes(10),
      scaleOutCooldown: cdk.Duration.seconds(30),
      healthCheckGracePeriod: cdk.Duration.minutes(10),
      stopTimeout: cdk.Duration.seconds(60),
      batching: { maxBatchSize: 16, maxLatencyMs: 0 },
      maxQueue: 64,
      limits: { maxPayloadBytes: 8_000_000, maxBatch: 256, maxElements: 1_000_000 },
      intraOpThreads: 4,
      allowSpinning: true,
      pathPrefix: '/prod',
      logLevel: 'DEBUG',
      logPayloads: true,
      environment: { EXTRA: 'yes' },
      logRetention: logs.RetentionDays.ONE_YEAR,
    });
    expect(onlyResource(t, 'AWS::ECS::TaskDefinition').props).toMatchObject({
      Cpu: '4096',
      Memory: '16384',
      EphemeralStorage: { SizeInGiB: 50 },
      RuntimePlatform: { CpuArchitecture: 'X86_64' },
    });
    expect(container(t)).toMatchObject({
      StopTimeout: 60,
      // the container check allows at most 300 s of start period
      HealthCheck: { StartPeriod: 300 },
    });
    expect(env(t)).toMatchObject({
      BATCH_MAX_SIZE: '16',
      BATCH_MAX_LATENCY_MS: '0',
      MAX_QUEUE: '64',
      MAX_PAYLOAD_BYTES: '8000000',
      MAX_BATCH: '256',
      MAX_ELEMENTS: '1000000',
      ORT_INTRA_OP_THREADS: '4',
      ORT_ALLOW_SPINNING: 'true',
      PATH_PREFIX: '/prod',
      LOG_LEVEL: 'DEBUG',
      LOG_PAYLOADS: 'true',
      DRAIN_TIMEOUT_MS: '55000',
      EXTRA: 'yes',
    });
    t.hasResourceProperties('AWS::ECS::Service', { DesiredCount: 3, HealthCheckGracePeriodSeconds: 600 });
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
      MinCapacity: 3,
      MaxCapacity: 12,
    });
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({
        TargetValue: 70,
        ScaleInCooldown: 600,
        ScaleOutCooldown: 30,
      }),
    });
    t.hasResourceProperties('AWS::ApplicationAutoScaling::ScalingPolicy', {
      TargetTrackingScalingPolicyConfiguration: Match.objectLike({ TargetValue: 600 }),
    });
    for (const g of Object.values(t.findResources('AWS::Logs::LogGroup'))) {
      expect((g as { Properties: { RetentionInDays: number } }).Properties.RetentionInDays).toBe(365);
    }
  });

  test('a baked model: no MODEL_URI, its sha256 still checked, and no S3 read for the task', () => {
    const { t, service } = baked();
    const e = env(t);
    expect(e.MODEL_URI).toBeUndefined();
    expect(e.MODEL_NAME).toBe('iris');
    expect(e.MODEL_SHA256).toMatch(/^[0-9a-f]{64}$/);
    expect(service.modelUri).toBe('/opt/ml/model');
    // the only policy is the execution role's (image pull and logs)
    const policies = JSON.stringify(t.findResources('AWS::IAM::Policy'));
    expect(policies).not.toContain('s3:GetObject');
    expect(policies).not.toContain('kms:');
  });

  test('refuses to bake in a model whose manifest does not match it, even when bundling is skipped', () => {
    const bad = copyModel({ appendBytes: 3 });
    try {
      expect(() => baked({ bakedModelDir: bad })).toThrow(/sha256/);
    } finally {
      fs.rmSync(bad, { recursive: true, force: true });
    }
  });

  test('bring your own VPC and cluster: no VPC, endpoints or cluster are created', () => {
    const stack = testStack();
    const vpc = new ec2.Vpc(stack, 'Shared', { maxAzs: 2, natGateways: 1 });
    const cluster = new ecs.Cluster(stack, 'Cluster', {
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENHANCED,
    });
    const { t, service } = baked({ cluster, vpc }, stack);
    t.resourceCountIs('AWS::EC2::VPC', 1);
    t.resourceCountIs('AWS::EC2::VPCEndpoint', 0);
    t.resourceCountIs('AWS::ECS::Cluster', 1);
    expect(service.cluster).toBe(cluster);
    expect(service.vpc).toBe(vpc);
    // tasks, ALB and VPC link go to the VPC's private subnets
    const privateSubnets = vpc.privateSubnets.map((s) => stack.resolve(s.subnetId) as unknown);
    t.hasResourceProperties('AWS::ECS::Service', {
      NetworkConfiguration: { AwsvpcConfiguration: { Subnets: privateSubnets } },
    });
    t.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Subnets: privateSubnets });
    t.hasResourceProperties('AWS::ApiGatewayV2::VpcLink', { SubnetIds: privateSubnets });
  });

  test('a VPC alone is used for a new cluster', () => {
    const stack = testStack();
    const vpc = new ec2.Vpc(stack, 'Shared', { maxAzs: 2 });
    const { t, service } = baked({ vpc }, stack);
    t.resourceCountIs('AWS::EC2::VPC', 1);
    t.resourceCountIs('AWS::ECS::Cluster', 1);
    expect(service.cluster.vpc).toBe(vpc);
  });

  test('access logs: an existing bucket, or the created one with its own retention and removal', () => {
    const stack = testStack();
    const logsBucket = new s3.Bucket(stack, 'AuditLogs', { enforceSSL: true });
    const { t, service } = baked({ accessLogs: { bucket: logsBucket, prefix: 'models' } }, stack);
    expect(service.accessLogsBucket).toBeUndefined();
    t.resourceCountIs('AWS::S3::Bucket', 1);
    expect(JSON.stringify(t.findResources('AWS::S3::BucketPolicy'))).toContain(
      '/models/AWSLogs/123456789012/*',
    );

    const own = baked({
      accessLogs: {
        retention: cdk.Duration.days(30),
        removalPolicy: cdk.RemovalPolicy.DESTROY,
        autoDeleteObjects: true,
      },
    }).t;
    own.hasResource('AWS::S3::Bucket', {
      Properties: { LifecycleConfiguration: { Rules: [Match.objectLike({ ExpirationInDays: 30 })] } },
      DeletionPolicy: 'Delete',
    });
    own.resourceCountIs('Custom::S3AutoDeleteObjects', 1);
  });

  test('a region-agnostic stack looks the log delivery account up at deploy', () => {
    const stack = new cdk.Stack(testApp(), 'Agnostic');
    const { t } = baked({}, stack);
    const json = t.toJSON() as { Mappings: Record<string, Record<string, { account: string }>> };
    const accounts = Object.values(json.Mappings)[0] as Record<string, { account: string }>;
    expect(accounts['us-east-1']?.account).toBe('127311923021');
    // newer regions have no ELB account: the service principal writes there
    expect(accounts['eu-central-2']?.account).toBe('none');
    const policy = JSON.stringify(t.findResources('AWS::S3::BucketPolicy'));
    expect(policy).toContain('logdelivery.elasticloadbalancing.amazonaws.com');
    expect(policy).toContain('Fn::If');
  });

  test('InferenceApi proxies every route through the VPC link to the load balancer', () => {
    const { stack, service } = build();
    new InferenceApi(stack, 'Api', { backend: service.inferenceBackend() });
    const t = template(stack);
    t.resourceCountIs('AWS::ApiGatewayV2::VpcLink', 1);
    const methods = Object.values(t.findResources('AWS::ApiGateway::Method')).map(
      (m) => (m as { Properties: { Integration: Record<string, unknown> } }).Properties.Integration,
    );
    expect(methods).toHaveLength(9);
    for (const integration of methods) {
      expect(integration).toMatchObject({
        Type: 'HTTP_PROXY',
        ConnectionType: 'VPC_LINK',
        ConnectionId: stack.resolve(service.vpcLink.vpcLinkId) as unknown,
        IntegrationTarget: stack.resolve(service.loadBalancer.loadBalancerArn) as unknown,
      });
    }
  });

  test('metrics', () => {
    const { stack, service } = build();
    expect(service.metricCpuUtilization()).toMatchObject({
      metricName: 'CPUUtilization',
      statistic: 'Average',
    });
    expect(service.metricMemoryUtilization().metricName).toBe('MemoryUtilization');
    expect(service.metricTargetResponseTime()).toMatchObject({
      namespace: 'AWS/ApplicationELB',
      metricName: 'TargetResponseTime',
      statistic: 'p99',
    });
    expect(service.metricTarget5xxCount()).toMatchObject({
      metricName: 'HTTPCode_Target_5XX_Count',
      statistic: 'Sum',
    });
    expect(service.metricHttpCodeElb5xx().metricName).toBe('HTTPCode_ELB_5XX_Count');
    expect(service.metricUnhealthyHostCount()).toMatchObject({
      metricName: 'UnHealthyHostCount',
      statistic: 'Maximum',
    });
    expect(service.metricRequestCountPerTarget().metricName).toBe('RequestCountPerTarget');
    expect(service.metricTarget5xxRate().expression).toContain('errors / requests');
    const failures = service.metricModelLoadFailures({ period: cdk.Duration.minutes(1) });
    expect(failures).toMatchObject({ namespace: 'ModelDeployKit', statistic: 'Sum' });
    expect(failures.period.toMinutes()).toBe(1);
    // the metric comes from a filter on the container's log lines
    const t = template(stack);
    const { props: filter } = onlyResource(t, 'AWS::Logs::MetricFilter');
    expect(filter).toMatchObject({
      FilterPattern: '{ $.message = "model failed to load" }',
      MetricTransformations: [
        {
          MetricNamespace: 'ModelDeployKit',
          MetricName: failures.metricName,
          MetricValue: '1',
          DefaultValue: 0,
        },
      ],
    });
  });

  test.each<[string, Partial<OnnxContainerServiceProps>, RegExp]>([
    ['an unknown cpu', { cpu: 3000 }, /cpu must be one of 256, 512, 1024, 2048, 4096, 8192, 16384, got 3000/],
    [
      'memory Fargate does not pair with the cpu',
      { cpu: 1024, memoryLimitMiB: 1024 },
      /Fargate with cpu 1024 takes memoryLimitMiB 2048, 3072, .*, 8192, got 1024/,
    ],
    [
      'too little storage',
      { ephemeralStorageGiB: 20 },
      /ephemeralStorageGiB must be an integer from 21 to 200, got 20/,
    ],
    ['zero tasks', { minCapacity: 0 }, /minCapacity must be a positive integer, got 0/],
    [
      'max below min',
      { minCapacity: 4, maxCapacity: 2 },
      /maxCapacity \(2\) cannot be below minCapacity \(4\)/,
    ],
    [
      'a CPU target over 100',
      { targetCpuPercent: 120 },
      /targetCpuPercent must be an integer from 1 to 100, got 120/,
    ],
    [
      'a fractional request target',
      { requestsPerTarget: 2.5 },
      /requestsPerTarget must be a positive integer, got 2.5/,
    ],
    [
      'a stop timeout over 120 s',
      { stopTimeout: cdk.Duration.minutes(3) },
      /stopTimeout must be 10 s to 120 s .*, got 3 minutes/,
    ],
    [
      'a batch of one',
      { batching: { maxBatchSize: 1, maxLatencyMs: 5 } },
      /batching.maxBatchSize must be 2 or more .* got 1/,
    ],
    [
      'a negative batch wait',
      { batching: { maxBatchSize: 8, maxLatencyMs: -1 } },
      /batching.maxLatencyMs must be 0 or a positive integer, got -1/,
    ],
    [
      'a batch wait over a minute',
      { batching: { maxBatchSize: 8, maxLatencyMs: 120_000 } },
      /batching.maxLatencyMs must be at most 60000, got 120000/,
    ],
    ['a zero queue', { maxQueue: 0 }, /maxQueue must be a positive integer, got 0/],
    [
      'a zero payload limit',
      { limits: { maxPayloadBytes: 0 } },
      /limits.maxPayloadBytes must be a positive integer, got 0/,
    ],
    [
      'a path prefix without a slash',
      { pathPrefix: 'prod' },
      /pathPrefix must be one path segment .* got "prod"/,
    ],
    [
      'a path prefix of two segments',
      { pathPrefix: '/a/b' },
      /pathPrefix must be one path segment .* got "\/a\/b"/,
    ],
    [
      'auto-delete of a retained log bucket',
      { accessLogs: { autoDeleteObjects: true } },
      /accessLogs.autoDeleteObjects needs removalPolicy DESTROY, got retain/,
    ],
  ])('%s is refused with a message naming it', (_name, props, message) => {
    expect(() => baked(props)).toThrow(message);
  });

  test('exactly one model source: both or neither is refused', () => {
    const stack = testStack();
    const bucket = new ModelBucket(stack, 'Models');
    const artifact = new ModelArtifact(stack, 'Model', { bucket: bucket.bucket, modelDir: IRIS_DIR });
    expect(() => new OnnxContainerService(stack, 'Both', { artifact, bakedModelDir: IRIS_DIR })).toThrow(
      /give exactly one of artifact \(pull from S3\) or bakedModelDir .* got both/,
    );
    expect(() => new OnnxContainerService(stack, 'Neither', {})).toThrow(/got neither/);
  });

  test('a cluster in another VPC than vpc is refused', () => {
    const stack = testStack();
    const cluster = new ecs.Cluster(stack, 'Cluster', { vpc: new ec2.Vpc(stack, 'A', { natGateways: 0 }) });
    const vpc = new ec2.Vpc(stack, 'B', { natGateways: 0 });
    expect(() => baked({ cluster, vpc }, stack)).toThrow(/cluster is in another VPC than vpc/);
  });
});

describe('checks', () => {
  /** S3 pull and baked model, with and without a region, each behind an InferenceApi. */
  function checkedApp(nag: boolean): cdk.App {
    const app = testApp();
    if (nag) cdk.Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
    const withRegion = build({}, testStack(app, 'Pull')).service;
    new InferenceApi(withRegion, 'Api', { backend: withRegion.inferenceBackend() });
    const agnostic = baked({}, new cdk.Stack(app, 'Baked')).service;
    new InferenceApi(agnostic, 'Api', { backend: agnostic.inferenceBackend() });
    return app;
  }

  test('cdk-nag AwsSolutions finds nothing unacknowledged, and aws-cdk-lib annotates no warnings', () => {
    const assembly = checkedApp(true).synth();
    expect(annotations(assembly)).toEqual([]);
    expect(assembly.stacks).toHaveLength(2);
  });

  test('cfn-lint reports no errors', () => {
    const assembly = checkedApp(false).synth();
    const files = templateFiles(assembly);
    expect(files).toHaveLength(2);
    expect(cfnLintErrors(files)).toEqual({ errors: [], errorBit: 0, spawnError: undefined });
  });
});
