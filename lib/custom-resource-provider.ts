import * as cdk from 'aws-cdk-lib';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { bundledCode, LAMBDA_UNZIPPED_LIMIT_BYTES, runtimeEntry } from './bundling';

/** One kind of custom resource, answered by one of the runtime's handlers. */
export interface CustomResourceProviderOptions {
  /** The provider's construct id, directly under the stack: one provider per stack and kind. */
  readonly id: string;
  /** The handler in `lambda/handlers/`, without `.ts`. */
  readonly handler: string;
  readonly description: string;
  /** What the role is for, in its description. */
  readonly purpose: string;
  readonly timeout: cdk.Duration;
  /** @default 512 */
  readonly memorySize?: number;
}

/**
 * The Lambda behind a kind of custom resource: one per stack, its own role (which may write its own log group
 * and nothing else until a resource grants more), a log group with retention, Node.js 22 on arm64.
 * CloudFormation invokes it directly; the handler answers the ResponseURL itself.
 */
export class CustomResourceProvider extends Construct {
  /** The stack's provider of this kind, created on first use. */
  public static of(scope: Construct, options: CustomResourceProviderOptions): CustomResourceProvider {
    const stack = cdk.Stack.of(scope);
    const found = stack.node.tryFindChild(options.id);
    if (found instanceof CustomResourceProvider) return found;
    if (found) throw new Error(`${stack.node.path} already has a construct '${options.id}'`);
    return new CustomResourceProvider(stack, options);
  }

  public readonly function: lambda.Function;

  private constructor(scope: Construct, options: CustomResourceProviderOptions) {
    super(scope, options.id);
    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: logs.RetentionDays.ONE_YEAR,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    const role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: options.purpose,
    });
    logGroup.grantWrite(role);
    this.function = new lambda.Function(this, 'Function', {
      description: options.description,
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      handler: 'index.handler',
      code: bundledCode({
        entry: runtimeEntry(options.handler),
        architecture: lambda.Architecture.ARM_64,
        includeOnnxRuntime: false,
        maxBytes: LAMBDA_UNZIPPED_LIMIT_BYTES,
      }),
      memorySize: options.memorySize ?? 512,
      timeout: options.timeout,
      role,
      logGroup,
    });
    cdk.Validations.of(this.function).acknowledge({
      id: 'AwsSolutions-L1',
      reason: 'Pinned to nodejs22.x, the runtime the bundle is built and tested for.',
    });
  }
}
