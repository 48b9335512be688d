import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { bundledCode, LAMBDA_UNZIPPED_LIMIT_BYTES, runtimeEntry, type BundleStats } from './bundling';
import type { IModelVersion } from './model-bucket';
import { readModelFolder, type ModelFolder } from './model-folder';
import { checkPositiveInteger } from './validate';

/** The namespace and service name the runtime's Powertools metrics use. */
export const METRICS_NAMESPACE = 'ModelDeployKit';
export const METRICS_SERVICE = 'model-deploy-kit';

/** Where a bundled model sits inside the Lambda asset. */
const BUNDLED_MODEL_PATH = '/var/task/model';

export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** Request limits the runtime enforces before it runs the model. */
export interface InferenceLimits {
  /** @default - the runtime's: 6 MB in Lambda (API Gateway's synchronous payload limit) */
  readonly maxPayloadBytes?: number;
  /** Rows in one request. @default 1024 */
  readonly maxBatch?: number;
  /** Tensor elements in one request. @default 16,777,216 */
  readonly maxElements?: number;
}

/** How a function that runs a model is sized, logged and tuned. */
export interface ModelFunctionOptions {
  /** @default lambda.Architecture.ARM_64 */
  readonly architecture?: lambda.Architecture;
  /**
   * A Node.js runtime, 22 or newer.
   * @default lambda.Runtime.NODEJS_22_X
   */
  readonly runtime?: lambda.Runtime;
  /**
   * Memory in MB; it also sets the CPU share, and onnxruntime uses every vCPU Lambda gives.
   * @default 2048
   */
  readonly memorySize?: number;
  /**
   * Up to 15 minutes.
   * @default Duration.seconds(30): API Gateway gives up after 29 s
   */
  readonly timeout?: cdk.Duration;
  /** @default - unreserved: the function shares the account's concurrency */
  readonly reservedConcurrentExecutions?: number;
  /** @default lambda.Tracing.DISABLED */
  readonly tracing?: lambda.Tracing;
  /**
   * Retention of the log group this construct creates.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
  /**
   * Bring your own log group.
   * @default - a new log group with `logRetention`, destroyed with the function
   */
  readonly logGroup?: logs.ILogGroup;
  /** @default 'INFO' */
  readonly logLevel?: LogLevel;
  /**
   * Log request bodies (the first 4 KB). Payloads may hold personal data.
   * @default false
   */
  readonly logPayloads?: boolean;
  /** @default - the runtime's defaults */
  readonly limits?: InferenceLimits;
  /**
   * onnxruntime intra-op threads.
   * @default - one per vCPU
   */
  readonly intraOpThreads?: number;
  /** Extra environment variables. @default - none */
  readonly environment?: Record<string, string>;
  /**
   * Fail the synth if the unzipped code asset is bigger than this.
   * @default - 250 MB, Lambda's own limit
   */
  readonly maxAssetSizeBytes?: number;
  /** @default - a description naming the model */
  readonly description?: string;
}

export interface ModelFunctionProps extends ModelFunctionOptions {
  /** The runtime's handler to run: a module of `lambda/handlers/` that exports `handler` and `ready`. */
  readonly handler: string;
  /**
   * The model version to read from S3; the function gets read access to that version only, and its sha256.
   * Give this or `bundledModelDir`.
   * @default - none
   */
  readonly artifact?: IModelVersion;
  /**
   * A model folder (model.onnx, model.json) to bundle into the code asset. For small models: no S3 read at
   * cold start, but every model change is a code deploy. Give this or `artifact`.
   * @default - none
   */
  readonly bundledModelDir?: string;
  /** What the function does, in its role's description. @default - the handler's name */
  readonly purpose?: string;
  /** Options for `function.currentVersion`. @default - CDK's */
  readonly currentVersionOptions?: lambda.VersionOptions;
}

function nodeMajor(runtime: lambda.Runtime): number | undefined {
  const m = /^nodejs(\d+)\.x$/.exec(runtime.name);
  return m?.[1] ? Number(m[1]) : undefined;
}

/**
 * A Lambda function that runs one of the model-deploy-kit runtime's handlers with a model: bundled locally
 * with onnxruntime-node for the target architecture only, its own role and log group, and the model loaded
 * during init, from S3 with its sha256 checked, or from the bundle. OnnxFunction (the API), BatchInference
 * and StreamInference are built on it.
 */
export class ModelFunction extends Construct implements iam.IGrantable {
  public readonly function: lambda.Function;
  public readonly role: iam.IRole;
  public readonly logGroup: logs.ILogGroup;
  public readonly grantPrincipal: iam.IPrincipal;
  public readonly modelName: string;
  public readonly modelVersion: string;
  /** What MODEL_URI is set to. */
  public readonly modelUri: string;
  /** The model's sha256, as MODEL_SHA256 has it. */
  public readonly modelSha256: string;
  public readonly architecture: lambda.Architecture;
  /** The reserved concurrency, if any: the ceiling concurrency alarms measure against. */
  public readonly reservedConcurrentExecutions?: number;
  private stats?: BundleStats;

  constructor(scope: Construct, id: string, props: ModelFunctionProps) {
    super(scope, id);
    // The concrete class's name, so an OnnxFunction's errors say OnnxFunction.
    const owner = `${new.target.name} ${this.node.path}`;
    if ((props.artifact === undefined) === (props.bundledModelDir === undefined)) {
      throw new Error(
        `${owner}: give exactly one of artifact (serve from S3) or bundledModelDir (bundle the model), got ${props.artifact ? 'both' : 'neither'}`,
      );
    }
    const runtime = props.runtime ?? lambda.Runtime.NODEJS_22_X;
    const major = nodeMajor(runtime);
    if (major === undefined || major < 22) {
      throw new Error(
        `${owner}: runtime must be Node.js 22 or newer (nodejs20.x is deprecated), got ${runtime.name}`,
      );
    }
    const memorySize = props.memorySize ?? 2048;
    if (!Number.isInteger(memorySize) || memorySize < 128 || memorySize > 10240) {
      throw new Error(`${owner}: memorySize must be an integer from 128 to 10240 MB, got ${memorySize}`);
    }
    const timeout = props.timeout ?? cdk.Duration.seconds(30);
    if (timeout.toSeconds() < 1 || timeout.toSeconds() > 900) {
      throw new Error(`${owner}: timeout must be 1 s to 15 min, got ${timeout.toHumanString()}`);
    }
    const reserved = props.reservedConcurrentExecutions;
    checkPositiveInteger(owner, 'reservedConcurrentExecutions', reserved);
    const limits = props.limits ?? {};
    for (const key of ['maxPayloadBytes', 'maxBatch', 'maxElements'] as const) {
      checkPositiveInteger(owner, `limits.${key}`, limits[key]);
    }
    checkPositiveInteger(owner, 'intraOpThreads', props.intraOpThreads);

    this.architecture = props.architecture ?? lambda.Architecture.ARM_64;
    this.reservedConcurrentExecutions = reserved;
    const environment: Record<string, string> = {
      POWERTOOLS_LOG_LEVEL: props.logLevel ?? 'INFO',
      POWERTOOLS_SERVICE_NAME: METRICS_SERVICE,
      POWERTOOLS_METRICS_NAMESPACE: METRICS_NAMESPACE,
      LOG_PAYLOADS: props.logPayloads ? 'true' : 'false',
    };
    let bundledFolder: ModelFolder | undefined;
    if (props.artifact) {
      this.modelName = props.artifact.modelName;
      this.modelVersion = props.artifact.version;
      this.modelUri = props.artifact.s3Uri;
      this.modelSha256 = props.artifact.sha256;
    } else {
      bundledFolder = readModelFolder(props.bundledModelDir as string);
      this.modelName = bundledFolder.manifest.name;
      this.modelVersion = bundledFolder.manifest.version;
      this.modelUri = BUNDLED_MODEL_PATH;
      this.modelSha256 = bundledFolder.sha256;
    }
    environment.MODEL_SHA256 = this.modelSha256;
    environment.MODEL_URI = this.modelUri;
    environment.MODEL_NAME = this.modelName;
    if (limits.maxPayloadBytes !== undefined) environment.MAX_PAYLOAD_BYTES = String(limits.maxPayloadBytes);
    if (limits.maxBatch !== undefined) environment.MAX_BATCH = String(limits.maxBatch);
    if (limits.maxElements !== undefined) environment.MAX_ELEMENTS = String(limits.maxElements);
    if (props.intraOpThreads !== undefined) environment.ORT_INTRA_OP_THREADS = String(props.intraOpThreads);
    Object.assign(environment, props.environment ?? {});

    this.logGroup =
      props.logGroup ??
      new logs.LogGroup(this, 'Logs', {
        retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
        removalPolicy: cdk.RemovalPolicy.DESTROY,
      });
    // Its own role, not AWSLambdaBasicExecutionRole: it may write to this log group and nothing else.
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: `Runs the ${this.modelName} ${props.purpose ?? props.handler} function`,
    });
    this.logGroup.grantWrite(role);
    this.role = role;
    this.grantPrincipal = role;

    this.function = new lambda.Function(this, 'Function', {
      description:
        props.description ??
        `model-deploy-kit: ${props.purpose ?? props.handler} with ${this.modelName} ${this.modelVersion} (ONNX)`,
      runtime,
      architecture: this.architecture,
      handler: 'index.handler',
      code: bundledCode(
        {
          entry: runtimeEntry(props.handler),
          architecture: this.architecture,
          includeOnnxRuntime: true,
          awaitAtInit: 'ready',
          modelDir: bundledFolder?.dir,
          maxBytes: props.maxAssetSizeBytes ?? LAMBDA_UNZIPPED_LIMIT_BYTES,
        },
        (stats) => {
          this.stats = stats;
        },
      ),
      memorySize,
      timeout,
      reservedConcurrentExecutions: reserved,
      tracing: props.tracing ?? lambda.Tracing.DISABLED,
      environment,
      role,
      logGroup: this.logGroup,
      currentVersionOptions: props.currentVersionOptions,
    });
    if (props.artifact) {
      props.artifact.grantRead(role);
      // Provisioned instances load the model during the deploy: the version must be in place first.
      this.function.node.addDependency(props.artifact.resource);
    }
    // The tracing grant is the only statement on Resource::*; it lands in the role's default policy.
    const tracingPolicy = role.node.tryFindChild('DefaultPolicy');
    if (
      tracingPolicy &&
      (props.tracing === lambda.Tracing.ACTIVE || props.tracing === lambda.Tracing.PASS_THROUGH)
    ) {
      cdk.Validations.of(tracingPolicy).acknowledge({
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason: 'X-Ray PutTraceSegments and PutTelemetryRecords have no resource-level permissions.',
      });
    }
    cdk.Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'The runtime is a prop (Node.js 22 or newer, checked); the default is the one the bundle is tested on.',
    });
  }

  /** Sizes of the code asset, when this synth bundled it (not when bundling was skipped). */
  public get bundleStats(): BundleStats | undefined {
    return this.stats;
  }

  /** Invoke rights on the function. */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return this.function.grantInvoke(grantee);
  }

  public metricInvocations(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.function.metricInvocations({ statistic: 'Sum', ...props });
  }

  public metricErrors(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.function.metricErrors({ statistic: 'Sum', ...props });
  }

  public metricThrottles(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.function.metricThrottles({ statistic: 'Sum', ...props });
  }

  /** Function duration; p99 by default. */
  public metricDuration(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.function.metricDuration({ statistic: 'p99', ...props });
  }

  /** Concurrent executions of this function (Maximum). */
  public metricConcurrentExecutions(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.function.metric('ConcurrentExecutions', { statistic: 'Maximum', ...props });
  }

  /** Errors as a percentage of invocations. */
  public metricErrorRate(props?: { period?: cdk.Duration }): cloudwatch.MathExpression {
    const period = props?.period ?? cdk.Duration.minutes(5);
    return new cloudwatch.MathExpression({
      expression: 'IF(invocations > 0, 100 * errors / invocations, 0)',
      usingMetrics: {
        errors: this.metricErrors({ period }),
        invocations: this.metricInvocations({ period }),
      },
      label: 'Error rate (%)',
      period,
    });
  }

  /** The model run alone, as the runtime measures it (EMF); p99 by default. */
  public metricInferenceLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricRuntime('InferenceLatency', { statistic: 'p99', ...props });
  }

  /** Rows per model run (EMF); average by default. */
  public metricBatchSize(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricRuntime('BatchSize', { statistic: 'Average', ...props });
  }

  /** Requests rejected as bad (400) by the runtime (EMF). */
  public metricBadRequests(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.metricRuntime('BadRequestErrors', { statistic: 'Sum', ...props });
  }

  /** Init phases that could not load the model (EMF); such an instance answers 503. */
  public metricModelLoadFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return runtimeMetric('ModelLoadFailures', {}, { statistic: 'Sum', ...props });
  }

  /** A metric the runtime publishes (EMF) for this function's model, e.g. a handler's own counts. */
  public metricRuntime(metricName: string, props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return runtimeMetric(metricName, { model: this.modelName }, props);
  }
}

/**
 * A metric the runtime writes as EMF (Powertools, namespace ModelDeployKit): dimension `service` plus the ones
 * given, e.g. `{ model }` for a server's or `{ stream }` for the capture transform's.
 */
export function runtimeMetric(
  metricName: string,
  dimensions: Record<string, string>,
  props?: cloudwatch.MetricOptions,
): cloudwatch.Metric {
  return new cloudwatch.Metric({
    namespace: METRICS_NAMESPACE,
    metricName,
    dimensionsMap: { service: METRICS_SERVICE, ...dimensions },
    ...props,
  });
}
