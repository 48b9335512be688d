import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { bundledCode, LAMBDA_UNZIPPED_LIMIT_BYTES, runtimeEntry, type BundleStats } from './bundling';
import type { IModelVersion } from './model-bucket';
import { readModelFolder, type ModelFolder } from './model-folder';
import { CustomResourceProvider } from './custom-resource-provider';
import { checkPositiveInteger } from './validate';

/** The namespace and service name the runtime's Powertools metrics use. */
export const METRICS_NAMESPACE = 'ModelDeployKit';
export const METRICS_SERVICE = 'model-deploy-kit';

/** Where a bundled model sits inside the Lambda asset. */
const BUNDLED_MODEL_PATH = '/var/task/model';

export type LogLevel = 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

/** The name of a function's own model's variant, when it has a challenger. */
export const DEFAULT_VARIANT_NAME = 'primary';
export const DEFAULT_CHALLENGER_NAME = 'challenger';
const VARIANT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

/** A/B: a second model version, served by its own Lambda version behind the same `live` alias. */
export interface ChallengerProps {
  /** The model version to try (it must be in S3: a ModelArtifact or a registry package). */
  readonly model: IModelVersion;
  /** The share of requests the alias sends it: more than 0, less than 1 (0.1 = 10 %). */
  readonly weight: number;
  /** Its name in metrics, alarms and the X-Model-Variant header. @default 'challenger' */
  readonly name?: string;
}

/** One variant behind the `live` alias. */
export interface ModelVariant {
  readonly name: string;
  /** The Lambda version that serves it. */
  readonly version: lambda.IVersion;
  /** Its share of the alias's requests, 0 to 1. */
  readonly weight: number;
  /** The model version it serves, from the manifest or the registry. */
  readonly modelVersion: string;
}

/** Request limits the runtime enforces before it runs the model. */
export interface InferenceLimits {
  /** @default - the runtime's: 6 MB in Lambda (API Gateway's synchronous payload limit) */
  readonly maxPayloadBytes?: number;
  /** Rows in one request. @default 1024 */
  readonly maxBatch?: number;
  /** Tensor elements in one request. @default 16,777,216 */
  readonly maxElements?: number;
}

export interface OnnxFunctionProps {
  /**
   * The model version to serve from S3; the function gets read access to that version only, and its sha256.
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
   * @default Duration.seconds(30): API Gateway gives up after 29 s
   */
  readonly timeout?: cdk.Duration;
  /** @default - unreserved: the function shares the account's concurrency */
  readonly reservedConcurrentExecutions?: number;
  /**
   * Warm instances kept on the `live` alias: no cold starts up to this concurrency, billed while idle.
   * @default 0
   */
  readonly provisionedConcurrentExecutions?: number;
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
  /**
   * A/B test a second model version: the `live` alias sends `weight` of requests to a Lambda version that
   * serves it, the rest to this deploy's version, as SageMaker's production variants do. Requests with an
   * `X-Model-Variant` header go to that variant whatever version they land on.
   * @default - one model, no routing
   */
  readonly challenger?: ChallengerProps;
  /** This function's own model's variant name, with a challenger. @default 'primary' */
  readonly variantName?: string;
  /**
   * Point `live` at this published version number instead of the one this deploy publishes: to pin a known
   * good version, or to make a rollback done by hand stick. Versions are retained, so any earlier one exists.
   * @default - the version this deploy publishes
   */
  readonly liveVersion?: string;
}

function nodeMajor(runtime: lambda.Runtime): number | undefined {
  const m = /^nodejs(\d+)\.x$/.exec(runtime.name);
  return m?.[1] ? Number(m[1]) : undefined;
}

/**
 * The inference Lambda: the model-deploy-kit runtime (`lambda/handlers/api.ts`), bundled locally with
 * onnxruntime-node for the target architecture only. The model loads during init, from S3 with its
 * sha256 checked, or from the bundle. API Gateway should call `alias`.
 */
export class OnnxFunction extends Construct implements iam.IGrantable {
  public readonly function: lambda.Function;
  /** The `live` alias on the current version: what the API calls, and where provisioned concurrency sits. */
  public readonly alias: lambda.Alias;
  public readonly role: iam.IRole;
  public readonly logGroup: logs.ILogGroup;
  public readonly grantPrincipal: iam.IPrincipal;
  public readonly modelName: string;
  public readonly modelVersion: string;
  /** What MODEL_URI is set to. */
  public readonly modelUri: string;
  public readonly architecture: lambda.Architecture;
  /** The reserved concurrency, if any: the ceiling concurrency alarms measure against. */
  public readonly reservedConcurrentExecutions?: number;
  /** The version `alias` points at: the one this deploy publishes, or `liveVersion`. */
  public readonly liveVersion: lambda.IVersion;
  /** The variants behind `alias`: one, or the primary and its challenger. */
  public readonly variants: ModelVariant[];
  private stats?: BundleStats;

  constructor(scope: Construct, id: string, props: OnnxFunctionProps) {
    super(scope, id);
    if ((props.artifact === undefined) === (props.bundledModelDir === undefined)) {
      throw new Error(
        `OnnxFunction ${this.node.path}: give exactly one of artifact (serve from S3) or bundledModelDir (bundle the model), got ${props.artifact ? 'both' : 'neither'}`,
      );
    }
    const runtime = props.runtime ?? lambda.Runtime.NODEJS_22_X;
    const major = nodeMajor(runtime);
    if (major === undefined || major < 22) {
      throw new Error(
        `OnnxFunction ${this.node.path}: runtime must be Node.js 22 or newer (nodejs20.x is deprecated), got ${runtime.name}`,
      );
    }
    const memorySize = props.memorySize ?? 2048;
    if (!Number.isInteger(memorySize) || memorySize < 128 || memorySize > 10240) {
      throw new Error(
        `OnnxFunction ${this.node.path}: memorySize must be an integer from 128 to 10240 MB, got ${memorySize}`,
      );
    }
    const timeout = props.timeout ?? cdk.Duration.seconds(30);
    if (timeout.toSeconds() < 1 || timeout.toSeconds() > 900) {
      throw new Error(
        `OnnxFunction ${this.node.path}: timeout must be 1 s to 15 min, got ${timeout.toHumanString()}`,
      );
    }
    const owner = `OnnxFunction ${this.node.path}`;
    const reserved = props.reservedConcurrentExecutions;
    checkPositiveInteger(owner, 'reservedConcurrentExecutions', reserved);
    const provisioned = props.provisionedConcurrentExecutions ?? 0;
    checkPositiveInteger(owner, 'provisionedConcurrentExecutions', provisioned, true);
    if (reserved !== undefined && provisioned > reserved) {
      throw new Error(
        `OnnxFunction ${this.node.path}: provisionedConcurrentExecutions (${provisioned}) cannot exceed reservedConcurrentExecutions (${reserved})`,
      );
    }
    const limits = props.limits ?? {};
    for (const key of ['maxPayloadBytes', 'maxBatch', 'maxElements'] as const) {
      checkPositiveInteger(owner, `limits.${key}`, limits[key]);
    }
    checkPositiveInteger(owner, 'intraOpThreads', props.intraOpThreads);
    if (props.liveVersion !== undefined && !/^[1-9]\d*$/.test(props.liveVersion)) {
      throw new Error(
        `${owner}: liveVersion must be a published version number such as '12', got ${JSON.stringify(props.liveVersion)}`,
      );
    }
    const challenger = props.challenger;
    const variantName = props.variantName ?? DEFAULT_VARIANT_NAME;
    const challengerName = challenger?.name ?? DEFAULT_CHALLENGER_NAME;
    if (challenger) {
      if (!(challenger.weight > 0 && challenger.weight < 1)) {
        throw new Error(
          `${owner}: challenger.weight must be more than 0 and less than 1 (0.1 = 10 %), got ${challenger.weight}`,
        );
      }
      for (const [key, name] of [
        ['variantName', variantName],
        ['challenger.name', challengerName],
      ] as const) {
        if (!VARIANT_NAME.test(name)) {
          throw new Error(
            `${owner}: ${key} must be letters, digits, '-' and '_' (at most 63), got ${JSON.stringify(name)}`,
          );
        }
      }
      if (variantName === challengerName) {
        throw new Error(`${owner}: the primary and the challenger are both named '${variantName}'`);
      }
      if (props.liveVersion !== undefined) {
        throw new Error(`${owner}: liveVersion pins one version; it cannot be combined with a challenger`);
      }
    } else if (props.variantName !== undefined) {
      throw new Error(`${owner}: variantName names the primary of an A/B test, but there is no challenger`);
    }

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
      environment.MODEL_SHA256 = props.artifact.sha256;
    } else {
      bundledFolder = readModelFolder(props.bundledModelDir as string);
      const folder = bundledFolder;
      this.modelName = folder.manifest.name;
      this.modelVersion = folder.manifest.version;
      this.modelUri = BUNDLED_MODEL_PATH;
      environment.MODEL_SHA256 = folder.sha256;
    }
    environment.MODEL_URI = this.modelUri;
    environment.MODEL_NAME = this.modelName;
    if (limits.maxPayloadBytes !== undefined) environment.MAX_PAYLOAD_BYTES = String(limits.maxPayloadBytes);
    if (limits.maxBatch !== undefined) environment.MAX_BATCH = String(limits.maxBatch);
    if (limits.maxElements !== undefined) environment.MAX_ELEMENTS = String(limits.maxElements);
    if (props.intraOpThreads !== undefined) environment.ORT_INTRA_OP_THREADS = String(props.intraOpThreads);
    if (challenger) {
      environment.MODEL_VARIANT = variantName;
      environment.MODEL_VARIANTS = cdk.Stack.of(this).toJsonString({
        [variantName]: { uri: this.modelUri, sha256: environment.MODEL_SHA256 },
        [challengerName]: { uri: challenger.model.s3Uri, sha256: challenger.model.sha256 },
      });
    }
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
      description: `Runs the ${this.modelName} inference function`,
    });
    this.logGroup.grantWrite(role);
    this.role = role;
    this.grantPrincipal = role;

    this.function = new lambda.Function(this, 'Function', {
      description:
        props.description ??
        `model-deploy-kit: serves ${this.modelName} ${this.modelVersion} (ONNX, KServe V2)`,
      runtime,
      architecture: this.architecture,
      handler: 'index.handler',
      code: bundledCode(
        {
          entry: runtimeEntry('api'),
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
      // Kept, so `live` can be pointed back at any earlier version (liveVersion, or by hand).
      currentVersionOptions: {
        removalPolicy: cdk.RemovalPolicy.RETAIN,
        description: `${this.modelName} ${this.modelVersion}`,
      },
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

    this.liveVersion =
      props.liveVersion !== undefined
        ? lambda.Version.fromVersionAttributes(this, 'PinnedVersion', {
            lambda: this.function,
            version: props.liveVersion,
          })
        : this.function.currentVersion;
    const primaryVariant: ModelVariant = {
      name: variantName,
      version: this.liveVersion,
      weight: challenger ? 1 - challenger.weight : 1,
      modelVersion: this.modelVersion,
    };
    this.variants = [primaryVariant];
    if (challenger) {
      challenger.model.grantRead(role);
      const published = this.publishVariant(challengerName, challenger.model, {
        MODEL_URI: [this.modelUri, challenger.model.s3Uri],
        MODEL_SHA256: [environment.MODEL_SHA256, challenger.model.sha256],
        MODEL_VARIANT: [variantName, challengerName],
      });
      this.variants.push({
        name: challengerName,
        version: published,
        weight: challenger.weight,
        modelVersion: challenger.model.version,
      });
    }

    this.alias = new lambda.Alias(this, 'Live', {
      aliasName: 'live',
      version: this.liveVersion,
      additionalVersions: this.variants.slice(1).map((v) => ({ version: v.version, weight: v.weight })),
      provisionedConcurrentExecutions: provisioned > 0 ? provisioned : undefined,
    });
  }

  /**
   * A Lambda version like this deploy's, but with the variant's values of a few environment variables
   * (`[primary, variant]` each): CloudFormation gives a function one configuration, so a custom resource
   * publishes the second one (lambda/core/variant-version.ts).
   */
  private publishVariant(
    name: string,
    model: IModelVersion,
    differs: Record<string, [string, string]>,
  ): lambda.IVersion {
    const provider = CustomResourceProvider.of(this, {
      id: 'ModelDeployKitVariantPublisher',
      handler: 'publish-variant',
      description:
        'model-deploy-kit: publishes the Lambda version of an A/B variant (Custom::ModelVariantVersion)',
      purpose: 'Publishes A/B variant versions of model-deploy-kit inference functions',
      timeout: cdk.Duration.minutes(10),
    }).function;
    provider.addToRolePolicy(
      new iam.PolicyStatement({
        actions: [
          'lambda:GetFunctionConfiguration',
          'lambda:UpdateFunctionConfiguration',
          'lambda:PublishVersion',
        ],
        resources: [this.function.functionArn],
      }),
    );
    const resource = new cdk.CustomResource(this, `${name}Version`, {
      serviceToken: provider.functionArn,
      resourceType: 'Custom::ModelVariantVersion',
      properties: {
        FunctionName: this.function.functionName,
        VariantEnvironment: Object.fromEntries(Object.entries(differs).map(([k, [, v]]) => [k, v])),
        PrimaryEnvironment: Object.fromEntries(Object.entries(differs).map(([k, [p]]) => [k, p])),
        Description: `${model.modelName} ${model.version} (A/B variant ${name})`,
        // A new primary version means new code or settings: the variant's version must have them too.
        PrimaryVersion: this.function.currentVersion.version,
      },
      // Versions stay, like CDK's own: an alias or a rollback may still point at one.
      removalPolicy: cdk.RemovalPolicy.RETAIN,
    });
    resource.node.addDependency(model.resource);
    return lambda.Version.fromVersionAttributes(this, `${name}VersionRef`, {
      lambda: this.function,
      version: resource.getAttString('Version'),
    });
  }

  /** Sizes of the code asset, when this synth bundled it (not when bundling was skipped). */
  public get bundleStats(): BundleStats | undefined {
    return this.stats;
  }

  /**
   * A Lambda metric of the alias's invocations that ran on one version: a variant's, or the version a
   * deploy is shifting traffic to.
   */
  public metricVersion(
    version: lambda.IVersion,
    metricName: string,
    props?: cloudwatch.MetricOptions,
  ): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: 'AWS/Lambda',
      metricName,
      dimensionsMap: {
        FunctionName: this.function.functionName,
        Resource: `${this.function.functionName}:${this.alias.aliasName}`,
        ExecutedVersion: version.version,
      },
      ...props,
    });
  }

  /** Errors as a percentage of the alias's invocations that ran on one version. */
  public metricVersionErrorRate(
    version: lambda.IVersion,
    props?: { period?: cdk.Duration; label?: string },
  ): cloudwatch.MathExpression {
    const period = props?.period ?? cdk.Duration.minutes(5);
    return new cloudwatch.MathExpression({
      expression: 'IF(invocations > 0, 100 * errors / invocations, 0)',
      usingMetrics: {
        errors: this.metricVersion(version, 'Errors', { statistic: 'Sum', period }),
        invocations: this.metricVersion(version, 'Invocations', { statistic: 'Sum', period }),
      },
      label: props?.label ?? 'Error rate (%)',
      period,
    });
  }

  /**
   * A Lambda metric of one variant.
   * @param variant a name from `variants`
   */
  public metricVariant(
    variant: string,
    metricName: string,
    props?: cloudwatch.MetricOptions,
  ): cloudwatch.Metric {
    return this.metricVersion(this.variant(variant).version, metricName, {
      label: `${metricName} (${variant})`,
      ...props,
    });
  }

  /** Errors as a percentage of invocations, for one variant. */
  public metricVariantErrorRate(
    variant: string,
    props?: { period?: cdk.Duration },
  ): cloudwatch.MathExpression {
    return this.metricVersionErrorRate(this.variant(variant).version, {
      period: props?.period,
      label: `Error rate (%) (${variant})`,
    });
  }

  private variant(name: string): ModelVariant {
    const found = this.variants.find((v) => v.name === name);
    if (!found) {
      throw new Error(
        `OnnxFunction ${this.node.path}: no variant '${name}'; it has ${this.variants.map((v) => v.name).join(', ')}`,
      );
    }
    return found;
  }

  /** Invoke rights on the `live` alias. */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return this.alias.grantInvoke(grantee);
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
    return this.runtimeMetric('InferenceLatency', { statistic: 'p99', ...props });
  }

  /** Rows per model run (EMF); average by default. */
  public metricBatchSize(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.runtimeMetric('BatchSize', { statistic: 'Average', ...props });
  }

  /** Requests rejected as bad (400) by the runtime (EMF). */
  public metricBadRequests(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.runtimeMetric('BadRequestErrors', { statistic: 'Sum', ...props });
  }

  /** Init phases that could not load the model (EMF); such an instance answers 503. */
  public metricModelLoadFailures(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName: 'ModelLoadFailures',
      dimensionsMap: { service: METRICS_SERVICE },
      statistic: 'Sum',
      ...props,
    });
  }

  private runtimeMetric(metricName: string, props: cloudwatch.MetricOptions): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: METRICS_NAMESPACE,
      metricName,
      dimensionsMap: { service: METRICS_SERVICE, model: this.modelName },
      ...props,
    });
  }
}
