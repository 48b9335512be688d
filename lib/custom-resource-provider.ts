import * as cdk from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { RuntimeFunction, type RuntimeFunctionProps } from './runtime-function';

/** One kind of custom resource, answered by one of the runtime's handlers. */
export interface CustomResourceProviderOptions extends Omit<
  RuntimeFunctionProps,
  'environment' | 'logRetention'
> {
  /** The provider's construct id, directly under the stack: one provider per stack and kind. */
  readonly id: string;
}

/**
 * The Lambda behind a kind of custom resource: one per stack, a RuntimeFunction (its own role and log group,
 * Node.js 22 on arm64). CloudFormation invokes it directly; the handler answers the ResponseURL itself.
 */
export class CustomResourceProvider extends RuntimeFunction {
  /** The stack's provider of this kind, created on first use. */
  public static of(scope: Construct, options: CustomResourceProviderOptions): CustomResourceProvider {
    const stack = cdk.Stack.of(scope);
    const found = stack.node.tryFindChild(options.id);
    if (found instanceof CustomResourceProvider) return found;
    if (found) throw new Error(`${stack.node.path} already has a construct '${options.id}'`);
    return new CustomResourceProvider(stack, options);
  }

  private constructor(scope: Construct, options: CustomResourceProviderOptions) {
    super(scope, options.id, options);
  }
}
