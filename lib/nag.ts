import * as cdk from 'aws-cdk-lib';
import type * as iam from 'aws-cdk-lib/aws-iam';
import { Construct } from 'constructs';

/**
 * cdk-nag's spelling of a resource in a finding's id: the resolved value with each reference written as
 * `<LogicalId>` or `<LogicalId.Attribute>`, so an acknowledgment names exactly one resource.
 */
export function nagResourceId(scope: Construct, value: string): string {
  const part = (v: unknown): string => {
    if (typeof v === 'string') return v;
    const ref = (v as { Ref?: string }).Ref;
    if (ref !== undefined) return `<${ref}>`;
    const att = (v as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
    if (att !== undefined) return `<${att[0]}.${att[1]}>`;
    const join = (v as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
    if (join !== undefined) return join[1].map(part).join(join[0]);
    throw new Error(`cannot name ${JSON.stringify(v)} for cdk-nag`);
  };
  return part(cdk.Stack.of(scope).resolve(value));
}

/** Acknowledges cdk-nag's IAM5 finding for exactly these resources on the principal's default policy. */
export function acknowledgeWildcards(
  principal: iam.IPrincipal,
  resources: readonly string[],
  reason: string,
): void {
  if (!(principal instanceof Construct)) return;
  const policy = principal.node.tryFindChild('DefaultPolicy');
  if (!policy) return;
  for (const arn of resources) {
    cdk.Validations.of(policy).acknowledge({
      id: `AwsSolutions-IAM5[Resource::${nagResourceId(policy, arn)}]`,
      reason,
    });
  }
}
