import * as cdk from 'aws-cdk-lib';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { FactName, RegionInfo } from 'aws-cdk-lib/region-info';
import { Construct } from 'constructs';
import {
  MODEL_SERVER_HEALTH_COMMAND,
  MODEL_SERVER_HEALTH_PATH,
  MODEL_SERVER_MODEL_DIR,
  MODEL_SERVER_PORT,
  modelServerImage,
} from './container-image';
import { InferenceBackend } from './inference-api';
import type { IModelVersion } from './model-bucket';
import { readModelFolder, type ModelFolder } from './model-folder';
import {
  METRICS_NAMESPACE,
  METRICS_SERVICE,
  runtimeMetric,
  type InferenceLimits,
  type LogLevel,
} from './model-function';
import { checkPositiveInteger } from './validate';

/** Dynamic batching: concurrent requests are merged into one model run. */
export interface BatchingOptions {
  /** Rows in one model run, 2 or more. */
  readonly maxBatchSize: number;
  /** How long the first request waits for others, in ms (0 to 60000). */
  readonly maxLatencyMs: number;
}

/** Where the load balancer writes its access logs. */
export interface LoadBalancerAccessLogsOptions {
  /**
   * Write into this bucket instead. It must use SSE-S3 (the only encryption ALB log delivery supports), and
   * an imported bucket's policy must already let Elastic Load Balancing write to it.
   * @default - a new bucket: SSE-S3, SSL only, no public access, expiring after `retention`
   */
  readonly bucket?: s3.IBucket;
  /** @default 'alb' */
  readonly prefix?: string;
  /** How long logs are kept in the bucket this construct creates. @default Duration.days(365) */
  readonly retention?: cdk.Duration;
  /** For the bucket this construct creates. @default RemovalPolicy.RETAIN */
  readonly removalPolicy?: cdk.RemovalPolicy;
  /** Empty the bucket this construct creates when the stack deletes it (DESTROY only). @default false */
  readonly autoDeleteObjects?: boolean;
}

export interface OnnxContainerServiceProps {
  /**
   * The model version to pull from S3 at task start; the task role may read that version only, and the
   * server checks its sha256. Give this or `bakedModelDir`.
   * @default - none
   */
  readonly artifact?: IModelVersion;
  /**
   * A model folder (model.onnx, model.json) baked into the image at /opt/ml/model: no S3 read at start,
   * but every model change is an image build. Give this or `artifact`.
   * @default - none
   */
  readonly bakedModelDir?: string;
  /**
   * Bring your own VPC. Tasks then need their own path to ECR, CloudWatch Logs and S3 (NAT or endpoints).
   * @default - a new VPC: 2 AZs, isolated subnets only, flow logs, and VPC endpoints for S3 (gateway),
   *   ECR and CloudWatch Logs, so tasks have no route to the internet at all
   */
  readonly vpc?: ec2.IVpc;
  /**
   * Subnets for the tasks, the load balancer and the VPC link.
   * @default - the isolated subnets of the VPC this construct creates; in a VPC you bring, its private
   *   subnets with egress (a VPC with isolated subnets only must name them here)
   */
  readonly vpcSubnets?: ec2.SubnetSelection;
  /**
   * Run in this cluster. Its VPC is used unless `vpc` names the same one.
   * @default - a new cluster with Container Insights
   */
  readonly cluster?: ecs.ICluster;
  /** @default ecs.CpuArchitecture.ARM64 */
  readonly cpuArchitecture?: ecs.CpuArchitecture;
  /** vCPU units, one of Fargate's: 256, 512, 1024, 2048, 4096, 8192, 16384. @default 1024 */
  readonly cpu?: number;
  /** Memory in MiB; must be one Fargate allows with `cpu`. @default 2048 */
  readonly memoryLimitMiB?: number;
  /**
   * Task storage in GiB (21 to 200); downloaded models are cached in /tmp on it.
   * @default - Fargate's 20 GiB
   */
  readonly ephemeralStorageGiB?: number;
  /** Tasks kept running, and the desired count at creation. @default 1 */
  readonly minCapacity?: number;
  /** @default - 4, or minCapacity when that is more */
  readonly maxCapacity?: number;
  /** Average CPU the service scales to hold. @default 60 */
  readonly targetCpuPercent?: number;
  /**
   * Requests per task per minute the service scales to hold: ALBRequestCountPerTarget, which Application
   * Auto Scaling tracks as a one-minute sum for each registered task.
   * @default 3000 (50 requests/s per task)
   */
  readonly requestsPerTarget?: number;
  /** @default Duration.minutes(5): scale in slowly, a new task takes a model load to become useful */
  readonly scaleInCooldown?: cdk.Duration;
  /** @default Duration.seconds(60) */
  readonly scaleOutCooldown?: cdk.Duration;
  /**
   * How long ECS ignores load balancer health checks after a task starts. A large model needs longer.
   * @default Duration.seconds(60)
   */
  readonly healthCheckGracePeriod?: cdk.Duration;
  /**
   * How long ECS waits after SIGTERM before it kills the container (10 s to 120 s). The server drains for
   * 5 s less than this.
   * @default Duration.seconds(30)
   */
  readonly stopTimeout?: cdk.Duration;
  /** @default - off: one model run per request */
  readonly batching?: BatchingOptions;
  /** Requests in flight in one task before it answers 503 with Retry-After. @default - the server's: 256 */
  readonly maxQueue?: number;
  /** @default - the runtime's defaults */
  readonly limits?: InferenceLimits;
  /**
   * onnxruntime intra-op threads.
   * @default - one per vCPU
   */
  readonly intraOpThreads?: number;
  /**
   * Let onnxruntime's worker threads spin between runs. A spinning thread holds a core while the task is
   * idle, which the CPU alarm and CPU autoscaling would read as load.
   * @default false
   */
  readonly allowSpinning?: boolean;
  /**
   * A leading path segment the server strips, such as `/api`: API Gateway puts the stage name in front of
   * the path it sends through a VPC link.
   * @default - none
   */
  readonly pathPrefix?: string;
  /** @default 'INFO' */
  readonly logLevel?: LogLevel;
  /**
   * Log request bodies (the first 4 KB). Payloads may hold personal data.
   * @default false
   */
  readonly logPayloads?: boolean;
  /** Extra environment variables. @default - none */
  readonly environment?: Record<string, string>;
  /**
   * Retention of the log groups this construct creates (the container's and the VPC flow logs').
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Bring your own log group for the container.
   * @default - a new log group with `logRetention`, destroyed with the service
   */
  readonly logGroup?: logs.ILogGroup;
  /** @default - a new bucket with the defaults in LoadBalancerAccessLogsOptions */
  readonly accessLogs?: LoadBalancerAccessLogsOptions;
}

/** Fargate's task sizes: each CPU value and the memory values it allows, in MiB. */
const FARGATE_SIZES: ReadonlyMap<number, readonly number[]> = new Map([
  [256, [512, 1024, 2048]],
  [512, range(1024, 4096, 1024)],
  [1024, range(2048, 8192, 1024)],
  [2048, range(4096, 16384, 1024)],
  [4096, range(8192, 30720, 1024)],
  [8192, range(16384, 61440, 4096)],
  [16384, range(32768, 122880, 8192)],
]);

function range(from: number, to: number, step: number): number[] {
  const out: number[] = [];
  for (let n = from; n <= to; n += step) out.push(n);
  return out;
}

/** The load balancer listens here; the VPC link reaches it on this port. */
const LISTENER_PORT = 80;

/**
 * The model server in a Fargate service behind an internal Application Load Balancer, for models too big
 * or too busy for Lambda: the same runtime as OnnxFunction, with dynamic batching, autoscaling on CPU and
 * requests, and deployment circuit-breaker rollback. API Gateway reaches it through `vpcLink`
 * (`inferenceBackend()` gives InferenceApi what it needs).
 */
export class OnnxContainerService extends Construct implements iam.IGrantable {
  public readonly vpc: ec2.IVpc;
  public readonly cluster: ecs.ICluster;
  public readonly taskDefinition: ecs.FargateTaskDefinition;
  public readonly container: ecs.ContainerDefinition;
  public readonly service: ecs.FargateService;
  /** Internal: clients come through API Gateway and the VPC link. */
  public readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  public readonly listener: elbv2.ApplicationListener;
  public readonly targetGroup: elbv2.ApplicationTargetGroup;
  /** A VPC link V2 whose security group may reach the load balancer's listener and nothing else. */
  public readonly vpcLink: apigwv2.VpcLink;
  public readonly logGroup: logs.ILogGroup;
  /** What the server may do: read its model version. */
  public readonly taskRole: iam.IRole;
  public readonly grantPrincipal: iam.IPrincipal;
  public readonly scaling: ecs.ScalableTaskCount;
  /** The access log bucket this construct created, if it made one. */
  public readonly accessLogsBucket?: s3.IBucket;
  public readonly modelName: string;
  public readonly modelVersion: string;
  /** What MODEL_URI is set to, or MODEL_SERVER_MODEL_DIR (/opt/ml/model) for a baked model. */
  public readonly modelUri: string;
  public readonly cpuArchitecture: ecs.CpuArchitecture;
  private readonly modelLoadFailures: cloudwatch.Metric;
  /** The VPC endpoints of the VPC this construct creates: tasks can pull and log only once they exist. */
  private readonly endpoints: ec2.IVpcEndpoint[] = [];

  constructor(scope: Construct, id: string, props: OnnxContainerServiceProps) {
    super(scope, id);
    const owner = `OnnxContainerService ${this.node.path}`;
    if ((props.artifact === undefined) === (props.bakedModelDir === undefined)) {
      throw new Error(
        `${owner}: give exactly one of artifact (pull from S3) or bakedModelDir (bake the model into the image), got ${props.artifact ? 'both' : 'neither'}`,
      );
    }
    const cpu = props.cpu ?? 1024;
    const memoryLimitMiB = props.memoryLimitMiB ?? 2048;
    const allowed = FARGATE_SIZES.get(cpu);
    if (!allowed) {
      throw new Error(`${owner}: cpu must be one of ${[...FARGATE_SIZES.keys()].join(', ')}, got ${cpu}`);
    }
    if (!allowed.includes(memoryLimitMiB)) {
      throw new Error(
        `${owner}: Fargate with cpu ${cpu} takes memoryLimitMiB ${allowed.join(', ')}, got ${memoryLimitMiB}`,
      );
    }
    const storage = props.ephemeralStorageGiB;
    if (storage !== undefined && (!Number.isInteger(storage) || storage < 21 || storage > 200)) {
      throw new Error(`${owner}: ephemeralStorageGiB must be an integer from 21 to 200, got ${storage}`);
    }
    const minCapacity = props.minCapacity ?? 1;
    const maxCapacity = props.maxCapacity ?? Math.max(4, minCapacity);
    checkPositiveInteger(owner, 'minCapacity', minCapacity);
    checkPositiveInteger(owner, 'maxCapacity', maxCapacity);
    if (maxCapacity < minCapacity) {
      throw new Error(`${owner}: maxCapacity (${maxCapacity}) cannot be below minCapacity (${minCapacity})`);
    }
    const targetCpuPercent = props.targetCpuPercent ?? 60;
    if (!Number.isInteger(targetCpuPercent) || targetCpuPercent < 1 || targetCpuPercent > 100) {
      throw new Error(`${owner}: targetCpuPercent must be an integer from 1 to 100, got ${targetCpuPercent}`);
    }
    const requestsPerTarget = props.requestsPerTarget ?? 3000;
    checkPositiveInteger(owner, 'requestsPerTarget', requestsPerTarget);
    const stopTimeout = props.stopTimeout ?? cdk.Duration.seconds(30);
    const stopSeconds = stopTimeout.toSeconds();
    if (stopSeconds < 10 || stopSeconds > 120) {
      throw new Error(
        `${owner}: stopTimeout must be 10 s to 120 s (Fargate's limit), got ${stopTimeout.toHumanString()}`,
      );
    }
    const gracePeriod = props.healthCheckGracePeriod ?? cdk.Duration.seconds(60);
    const batching = props.batching;
    if (batching) {
      checkPositiveInteger(owner, 'batching.maxBatchSize', batching.maxBatchSize);
      if (batching.maxBatchSize < 2) {
        throw new Error(
          `${owner}: batching.maxBatchSize must be 2 or more (1 is no batching: leave batching out), got ${batching.maxBatchSize}`,
        );
      }
      checkPositiveInteger(owner, 'batching.maxLatencyMs', batching.maxLatencyMs, true);
      if (batching.maxLatencyMs > 60_000) {
        throw new Error(
          `${owner}: batching.maxLatencyMs must be at most 60000, got ${batching.maxLatencyMs}`,
        );
      }
    }
    checkPositiveInteger(owner, 'maxQueue', props.maxQueue);
    const limits = props.limits ?? {};
    for (const key of ['maxPayloadBytes', 'maxBatch', 'maxElements'] as const) {
      checkPositiveInteger(owner, `limits.${key}`, limits[key]);
    }
    checkPositiveInteger(owner, 'intraOpThreads', props.intraOpThreads);
    if (props.pathPrefix !== undefined && !/^\/[A-Za-z0-9_.~-]+$/.test(props.pathPrefix)) {
      throw new Error(
        `${owner}: pathPrefix must be one path segment with a leading '/', such as '/api', got ${JSON.stringify(props.pathPrefix)}`,
      );
    }
    if (props.cluster && props.vpc && props.cluster.vpc !== props.vpc) {
      throw new Error(`${owner}: cluster is in another VPC than vpc; give one of them, or matching ones`);
    }

    this.cpuArchitecture = props.cpuArchitecture ?? ecs.CpuArchitecture.ARM64;
    const environment: Record<string, string> = {
      AWS_REGION: cdk.Stack.of(this).region,
      LOG_LEVEL: props.logLevel ?? 'INFO',
      LOG_PAYLOADS: props.logPayloads ? 'true' : 'false',
      POWERTOOLS_SERVICE_NAME: METRICS_SERVICE,
      // Drain before ECS's SIGKILL, with time to spare for the exit itself.
      DRAIN_TIMEOUT_MS: String((stopSeconds - 5) * 1000),
    };
    let baked: ModelFolder | undefined;
    if (props.artifact) {
      this.modelName = props.artifact.modelName;
      this.modelVersion = props.artifact.version;
      this.modelUri = props.artifact.s3Uri;
      environment.MODEL_URI = this.modelUri;
      environment.MODEL_SHA256 = props.artifact.sha256;
    } else {
      // Read (and hashed) once: the image is staged from this same folder.
      baked = readModelFolder(props.bakedModelDir as string);
      this.modelName = baked.manifest.name;
      this.modelVersion = baked.manifest.version;
      // Unset MODEL_URI: the server serves what the image holds.
      this.modelUri = MODEL_SERVER_MODEL_DIR;
      environment.MODEL_SHA256 = baked.sha256;
    }
    environment.MODEL_NAME = this.modelName;
    if (batching) {
      environment.BATCH_MAX_SIZE = String(batching.maxBatchSize);
      environment.BATCH_MAX_LATENCY_MS = String(batching.maxLatencyMs);
    }
    if (props.maxQueue !== undefined) environment.MAX_QUEUE = String(props.maxQueue);
    if (props.pathPrefix !== undefined) environment.PATH_PREFIX = props.pathPrefix;
    if (limits.maxPayloadBytes !== undefined) environment.MAX_PAYLOAD_BYTES = String(limits.maxPayloadBytes);
    if (limits.maxBatch !== undefined) environment.MAX_BATCH = String(limits.maxBatch);
    if (limits.maxElements !== undefined) environment.MAX_ELEMENTS = String(limits.maxElements);
    // Set, not left to the runtime: a small task's VM may show more CPUs than the task is given.
    environment.ORT_INTRA_OP_THREADS = String(props.intraOpThreads ?? Math.max(1, Math.floor(cpu / 1024)));
    environment.ORT_ALLOW_SPINNING = props.allowSpinning ? 'true' : 'false';
    Object.assign(environment, props.environment ?? {});

    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    const ownVpc = props.vpc === undefined && props.cluster === undefined;
    const created = ownVpc ? this.createVpc(logRetention) : undefined;
    this.vpc = props.vpc ?? props.cluster?.vpc ?? (created?.vpc as ec2.IVpc);
    const subnets = props.vpcSubnets ?? {
      subnetType: ownVpc ? ec2.SubnetType.PRIVATE_ISOLATED : ec2.SubnetType.PRIVATE_WITH_EGRESS,
    };
    this.cluster =
      props.cluster ??
      new ecs.Cluster(this, 'Cluster', {
        vpc: this.vpc,
        containerInsightsV2: ecs.ContainerInsights.ENABLED,
      });

    // Security groups: VPC link -> load balancer :80 -> tasks :8080, nothing else in.
    const vpcLinkGroup = new ec2.SecurityGroup(this, 'VpcLinkSecurityGroup', {
      vpc: this.vpc,
      description: `API Gateway VPC link into ${this.node.path}: may reach the load balancer only`,
      allowAllOutbound: false,
    });
    const loadBalancerGroup = new ec2.SecurityGroup(this, 'LoadBalancerSecurityGroup', {
      vpc: this.vpc,
      description: `Load balancer of ${this.node.path}: from the VPC link, to the tasks`,
      allowAllOutbound: false,
    });
    const taskGroup = new ec2.SecurityGroup(this, 'TaskSecurityGroup', {
      vpc: this.vpc,
      description: `Model server tasks of ${this.node.path}: from the load balancer; HTTPS out to AWS APIs`,
      allowAllOutbound: false,
    });
    // ECR, CloudWatch Logs and S3 all speak HTTPS; in the VPC this construct creates they are endpoints.
    taskGroup.addEgressRule(ec2.Peer.anyIpv4(), ec2.Port.tcp(443), 'HTTPS to ECR, CloudWatch Logs and S3');
    created?.endpointGroup.connections.allowFrom(
      taskGroup,
      ec2.Port.tcp(443),
      'HTTPS from the model server tasks',
    );

    this.vpcLink = new apigwv2.VpcLink(this, 'VpcLink', {
      vpc: this.vpc,
      subnets,
      securityGroups: [vpcLinkGroup],
    });

    this.logGroup =
      props.logGroup ??
      new logs.LogGroup(this, 'Logs', { retention: logRetention, removalPolicy: cdk.RemovalPolicy.DESTROY });
    const taskRole = new iam.Role(this, 'TaskRole', {
      assumedBy: new iam.ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: `Runs the ${this.modelName} model server`,
    });
    this.taskRole = taskRole;
    this.grantPrincipal = taskRole;
    props.artifact?.grantRead(taskRole);

    this.taskDefinition = new ecs.FargateTaskDefinition(this, 'Task', {
      cpu,
      memoryLimitMiB,
      ephemeralStorageGiB: storage,
      runtimePlatform: {
        cpuArchitecture: this.cpuArchitecture,
        operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
      },
      taskRole,
    });
    // The root filesystem is read-only; the server caches S3 downloads in the temp dir.
    this.taskDefinition.addVolume({ name: 'tmp' });
    this.container = this.taskDefinition.addContainer('Server', {
      image: modelServerImage(this, {
        cpuArchitecture: this.cpuArchitecture,
        model: baked,
      }),
      essential: true,
      // The image's `node` user: numeric, so the start does not depend on the image's /etc/passwd.
      user: '1000',
      readonlyRootFilesystem: true,
      portMappings: [{ containerPort: MODEL_SERVER_PORT, protocol: ecs.Protocol.TCP }],
      environment,
      healthCheck: {
        command: MODEL_SERVER_HEALTH_COMMAND,
        interval: cdk.Duration.seconds(10),
        timeout: cdk.Duration.seconds(5),
        retries: 3,
        // Failures during a model load do not count; ECS allows at most 300 s here.
        startPeriod: cdk.Duration.seconds(Math.min(300, Math.max(gracePeriod.toSeconds(), 10))),
      },
      stopTimeout,
      logging: ecs.LogDrivers.awsLogs({
        logGroup: this.logGroup,
        streamPrefix: 'server',
        // A slow CloudWatch Logs must not stall inference.
        mode: ecs.AwsLogDriverMode.NON_BLOCKING,
      }),
    });
    this.container.addMountPoints({ sourceVolume: 'tmp', containerPath: '/tmp', readOnly: false });
    cdk.Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason:
        'The environment holds the model location, its sha256 and server tuning, no secrets; it changes only with a new task definition, by design.',
    });
    const executionPolicy = this.taskDefinition.executionRole?.node.tryFindChild('DefaultPolicy');
    if (executionPolicy) {
      cdk.Validations.of(executionPolicy).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'ecr:GetAuthorizationToken has no resource-level permissions; the image pull itself is scoped to the asset repository.',
      });
    }

    this.accessLogsBucket = props.accessLogs?.bucket ? undefined : this.createAccessLogsBucket(props);
    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: this.vpc,
      vpcSubnets: subnets,
      internetFacing: false,
      securityGroup: loadBalancerGroup,
      dropInvalidHeaderFields: true,
    });
    this.logAccessLogs(props.accessLogs?.bucket ?? (this.accessLogsBucket as s3.IBucket), props);
    this.loadBalancer.connections.allowFrom(
      vpcLinkGroup,
      ec2.Port.tcp(LISTENER_PORT),
      'Requests from the API Gateway VPC link',
    );
    // API Gateway terminates TLS; this hop stays inside the VPC.
    this.listener = this.loadBalancer.addListener('Http', {
      port: LISTENER_PORT,
      protocol: elbv2.ApplicationProtocol.HTTP,
      open: false,
    });

    this.service = new ecs.FargateService(this, 'Service', {
      cluster: this.cluster,
      taskDefinition: this.taskDefinition,
      desiredCount: minCapacity,
      minHealthyPercent: 100,
      maxHealthyPercent: 200,
      circuitBreaker: { enable: true, rollback: true },
      healthCheckGracePeriod: gracePeriod,
      vpcSubnets: subnets,
      securityGroups: [taskGroup],
      assignPublicIp: false,
      enableExecuteCommand: false,
      propagateTags: ecs.PropagatedTagSource.SERVICE,
    });
    // Tasks pull the image, log, and load the model as they start: all of it must be in place first.
    this.service.node.addDependency(...this.endpoints);
    if (props.artifact) this.service.node.addDependency(props.artifact.resource);
    this.targetGroup = this.listener.addTargets('Tasks', {
      port: MODEL_SERVER_PORT,
      protocol: elbv2.ApplicationProtocol.HTTP,
      targets: [
        this.service.loadBalancerTarget({
          containerName: this.container.containerName,
          containerPort: MODEL_SERVER_PORT,
        }),
      ],
      healthCheck: {
        path: MODEL_SERVER_HEALTH_PATH,
        healthyHttpCodes: '200',
        interval: cdk.Duration.seconds(10),
        timeout: cdk.Duration.seconds(5),
        healthyThresholdCount: 2,
        unhealthyThresholdCount: 3,
      },
      // Long enough for in-flight requests (API Gateway gives up after 29 s), short enough for fast deploys.
      deregistrationDelay: cdk.Duration.seconds(30),
    });

    this.scaling = this.service.autoScaleTaskCount({ minCapacity, maxCapacity });
    const scaleInCooldown = props.scaleInCooldown ?? cdk.Duration.minutes(5);
    const scaleOutCooldown = props.scaleOutCooldown ?? cdk.Duration.seconds(60);
    this.scaling.scaleOnCpuUtilization('Cpu', {
      targetUtilizationPercent: targetCpuPercent,
      scaleInCooldown,
      scaleOutCooldown,
    });
    this.scaling.scaleOnRequestCount('Requests', {
      requestsPerTarget,
      targetGroup: this.targetGroup,
      scaleInCooldown,
      scaleOutCooldown,
    });

    // One metric per service: a metric filter cannot add a constant dimension to tell services apart.
    const metricName = `ModelLoadFailures-${cdk.Names.uniqueId(this)}`;
    this.logGroup.addMetricFilter('ModelLoadFailures', {
      filterPattern: logs.FilterPattern.stringValue('$.message', '=', 'model failed to load'),
      metricNamespace: METRICS_NAMESPACE,
      metricName,
      metricValue: '1',
      defaultValue: 0,
    });
    this.modelLoadFailures = new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      statistic: 'Sum',
    });
  }

  /** Lets InferenceApi proxy every V2 route to this service through `vpcLink`. */
  public inferenceBackend(): InferenceBackend {
    return InferenceBackend.fromLoadBalancer({
      vpcLink: this.vpcLink,
      loadBalancer: this.loadBalancer,
      port: LISTENER_PORT,
    });
  }

  /** Average CPU of the service's tasks, percent. */
  public metricCpuUtilization(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.service.metricCpuUtilization({ statistic: 'Average', ...props });
  }

  /** Average memory of the service's tasks, percent. */
  public metricMemoryUtilization(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.service.metricMemoryUtilization({ statistic: 'Average', ...props });
  }

  /** Time from the load balancer to the tasks and back, in seconds as the ALB reports it; p99 by default. */
  public metricTargetResponseTime(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.targetGroup.metrics.targetResponseTime({ statistic: 'p99', ...props });
  }

  /** 5XX responses the tasks sent. */
  public metricTarget5xxCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.targetGroup.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, {
      statistic: 'Sum',
      ...props,
    });
  }

  /** 5XX responses the load balancer made itself: no healthy task, a task that hung up. */
  public metricHttpCodeElb5xx(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.loadBalancer.metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, {
      statistic: 'Sum',
      ...props,
    });
  }

  /** Tasks failing the load balancer's health check (Maximum). */
  public metricUnhealthyHostCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.targetGroup.metrics.unhealthyHostCount({ statistic: 'Maximum', ...props });
  }

  /** Requests per task: what request-count scaling tracks. */
  public metricRequestCountPerTarget(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.targetGroup.metrics.requestCountPerTarget({ statistic: 'Sum', ...props });
  }

  /** Requests the load balancer sent to the tasks. */
  public metricRequestCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.targetGroup.metrics.requestCount({ statistic: 'Sum', ...props });
  }

  /** Task 5XX responses as a percentage of requests. */
  public metricTarget5xxRate(props?: { period?: cdk.Duration }): cloudwatch.MathExpression {
    const period = props?.period ?? cdk.Duration.minutes(5);
    return new cloudwatch.MathExpression({
      expression: 'IF(requests > 0, 100 * errors / requests, 0)',
      usingMetrics: {
        errors: this.metricTarget5xxCount({ period }),
        requests: this.metricRequestCount({ period }),
      },
      label: 'Target 5XX rate (%)',
      period,
    });
  }

  /** A metric the server writes as EMF for this service's model (RequestLatency, InferenceLatency, BatchSize, ...). */
  public metricRuntime(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return runtimeMetric(metricName, { model: this.modelName }, props);
  }

  /** Tasks that logged "model failed to load" (and exited), from a metric filter on the container's logs. */
  public metricModelLoadFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.modelLoadFailures.with({ ...props });
  }

  /**
   * Isolated subnets and VPC endpoints rather than NAT: the server needs ECR, CloudWatch Logs and its model
   * in S3, nothing on the internet, so nothing can leave; and three endpoints cost less than two NAT gateways.
   */
  private createVpc(logRetention: logs.RetentionDays): { vpc: ec2.Vpc; endpointGroup: ec2.SecurityGroup } {
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
      retention: logRetention,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    const vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      natGateways: 0,
      subnetConfiguration: [{ name: 'Tasks', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 20 }],
      // Nothing uses the default group; restricting it would cost a custom-resource Lambda.
      restrictDefaultSecurityGroup: false,
      flowLogs: {
        All: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
          trafficType: ec2.FlowLogTrafficType.ALL,
        },
      },
      gatewayEndpoints: { S3: { service: ec2.GatewayVpcEndpointAwsService.S3 } },
    });
    const endpointGroup = new ec2.SecurityGroup(this, 'EndpointSecurityGroup', {
      vpc,
      description: `VPC endpoints of ${this.node.path}: HTTPS from the model server tasks`,
      allowAllOutbound: false,
    });
    for (const [id, service] of [
      ['EcrApi', ec2.InterfaceVpcEndpointAwsService.ECR],
      ['EcrDocker', ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER],
      ['Logs', ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS],
    ] as const) {
      this.endpoints.push(
        vpc.addInterfaceEndpoint(id, {
          service,
          privateDnsEnabled: true,
          open: false,
          securityGroups: [endpointGroup],
        }),
      );
    }
    this.endpoints.push(vpc.node.findChild('S3') as ec2.GatewayVpcEndpoint);
    return { vpc, endpointGroup };
  }

  private createAccessLogsBucket(props: OnnxContainerServiceProps): s3.Bucket {
    const options = props.accessLogs ?? {};
    const removalPolicy = options.removalPolicy ?? cdk.RemovalPolicy.RETAIN;
    if (options.autoDeleteObjects && removalPolicy !== cdk.RemovalPolicy.DESTROY) {
      throw new Error(
        `OnnxContainerService ${this.node.path}: accessLogs.autoDeleteObjects needs removalPolicy DESTROY, got ${removalPolicy}`,
      );
    }
    const bucket = new s3.Bucket(this, 'AccessLogs', {
      // ALB log delivery supports SSE-S3 only.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
      lifecycleRules: [{ expiration: options.retention ?? cdk.Duration.days(365) }],
      removalPolicy,
      autoDeleteObjects: options.autoDeleteObjects,
    });
    cdk.Validations.of(bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'This is the load balancer access log bucket itself; logging it into another bucket would only move the question.',
    });
    return bucket;
  }

  /**
   * ALB access logs, as `logAccessLogs` writes them, but also in a region-agnostic stack (an offline
   * `cdk synth`): the principal that delivers them depends on the region, so it is looked up at deploy.
   */
  private logAccessLogs(bucket: s3.IBucket, props: OnnxContainerServiceProps): void {
    const prefix = props.accessLogs?.prefix ?? 'alb';
    const keyPrefix = prefix === '' ? '' : `${prefix}/`;
    const stack = cdk.Stack.of(this);
    this.loadBalancer.setAttribute('access_logs.s3.enabled', 'true');
    this.loadBalancer.setAttribute('access_logs.s3.bucket', bucket.bucketName);
    this.loadBalancer.setAttribute('access_logs.s3.prefix', prefix);
    const newRegions = new iam.ServicePrincipal('logdelivery.elasticloadbalancing.amazonaws.com');
    let principal: iam.IPrincipal;
    if (!cdk.Token.isUnresolved(stack.region)) {
      const account = RegionInfo.get(stack.region).elbv2Account;
      principal = account ? new iam.AccountPrincipal(account) : newRegions;
    } else {
      // Regions from August 2022 on have no ELB account: they get this account's root, which adds nothing
      // (its own principals need IAM grants anyway), next to the service principal that does the writing.
      const accounts = RegionInfo.regionMap(FactName.ELBV2_ACCOUNT);
      const map = new cdk.CfnMapping(this, 'ElbAccounts', {
        mapping: Object.fromEntries(
          RegionInfo.regions.map((r) => [r.name, { account: accounts[r.name] ?? 'none' }]),
        ),
      });
      const noAccount = new cdk.CfnCondition(this, 'RegionHasNoElbAccount', {
        expression: cdk.Fn.conditionEquals(map.findInMap(cdk.Aws.REGION, 'account'), 'none'),
      });
      const account = cdk.Token.asString(
        cdk.Fn.conditionIf(noAccount.logicalId, cdk.Aws.ACCOUNT_ID, map.findInMap(cdk.Aws.REGION, 'account')),
      );
      principal = new iam.CompositePrincipal(new iam.AccountPrincipal(account), newRegions);
    }
    bucket.addToResourcePolicy(
      new iam.PolicyStatement({
        actions: ['s3:PutObject'],
        principals: [principal],
        resources: [bucket.arnForObjects(`${keyPrefix}AWSLogs/${stack.account}/*`)],
      }),
    );
    // The load balancer checks it may write when access logs are turned on.
    const policy = bucket.policy?.node.defaultChild;
    if (policy instanceof cdk.CfnResource) {
      (this.loadBalancer.node.defaultChild as cdk.CfnResource).addResourceDependency(policy);
    }
  }
}
