import * as cdk from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { Construct } from 'constructs';
import type { IModelVersion } from './model-bucket';
import { readModelFolder } from './model-folder';
import { CustomResourceProvider } from './custom-resource-provider';
import { ModelFunction, type ModelFunctionOptions } from './model-function';
import { checkPositiveInteger } from './validate';

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

export interface OnnxFunctionProps extends ModelFunctionOptions {
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
  /**
   * Warm instances kept on the `live` alias: no cold starts up to this concurrency, billed while idle.
   * @default 0
   */
  readonly provisionedConcurrentExecutions?: number;
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

/**
 * The inference Lambda: the model-deploy-kit runtime (`lambda/handlers/api.ts`), bundled locally with
 * onnxruntime-node for the target architecture only. The model loads during init, from S3 with its
 * sha256 checked, or from the bundle. API Gateway should call `alias`.
 */
export class OnnxFunction extends ModelFunction {
  /** The `live` alias on the current version: what the API calls, and where provisioned concurrency sits. */
  public readonly alias: lambda.Alias;
  /** The version `alias` points at: the one this deploy publishes, or `liveVersion`. */
  public readonly liveVersion: lambda.IVersion;
  /** The variants behind `alias`: one, or the primary and its challenger. */
  public readonly variants: ModelVariant[];

  constructor(scope: Construct, id: string, props: OnnxFunctionProps) {
    super(scope, id, {
      ...props,
      handler: 'api',
      purpose: 'inference',
      description: props.description ?? OnnxFunction.describe(props),
      // Kept, so `live` can be pointed back at any earlier version (liveVersion, or by hand).
      currentVersionOptions: {
        removalPolicy: cdk.RemovalPolicy.RETAIN,
        description: OnnxFunction.versionDescription(props),
      },
    });
    const owner = `OnnxFunction ${this.node.path}`;
    const reserved = props.reservedConcurrentExecutions;
    const provisioned = props.provisionedConcurrentExecutions ?? 0;
    checkPositiveInteger(owner, 'provisionedConcurrentExecutions', provisioned, true);
    if (reserved !== undefined && provisioned > reserved) {
      throw new Error(
        `OnnxFunction ${this.node.path}: provisionedConcurrentExecutions (${provisioned}) cannot exceed reservedConcurrentExecutions (${reserved})`,
      );
    }
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

    if (challenger) {
      this.function.addEnvironment('MODEL_VARIANT', variantName);
      this.function.addEnvironment(
        'MODEL_VARIANTS',
        cdk.Stack.of(this).toJsonString({
          [variantName]: { uri: this.modelUri, sha256: this.modelSha256 },
          [challengerName]: { uri: challenger.model.s3Uri, sha256: challenger.model.sha256 },
        }),
      );
    }

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
      challenger.model.grantRead(this.role);
      const published = this.publishVariant(challengerName, challenger.model, {
        MODEL_URI: [this.modelUri, challenger.model.s3Uri],
        MODEL_SHA256: [this.modelSha256, challenger.model.sha256],
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
  public override grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return this.alias.grantInvoke(grantee);
  }

  private static describe(props: OnnxFunctionProps): string | undefined {
    const m = OnnxFunction.model(props);
    return m && `model-deploy-kit: serves ${m.name} ${m.version} (ONNX, KServe V2)`;
  }

  private static versionDescription(props: OnnxFunctionProps): string | undefined {
    const m = OnnxFunction.model(props);
    return m && `${m.name} ${m.version}`;
  }

  private static model(props: OnnxFunctionProps): { name: string; version: string } | undefined {
    if (props.artifact) return { name: props.artifact.modelName, version: props.artifact.version };
    if (props.bundledModelDir === undefined) return undefined;
    const { manifest } = readModelFolder(props.bundledModelDir);
    return { name: manifest.name, version: manifest.version };
  }
}
