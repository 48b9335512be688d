import * as cdk from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { Construct } from 'constructs';
import { CustomResourceProvider } from '../../lib/custom-resource-provider';
import { template, testStack } from '../support/cdk';

const options = {
  id: 'Publisher',
  handler: 'publish-model',
  description: 'publishes things',
  purpose: 'Publishes things',
  timeout: cdk.Duration.minutes(2),
};

describe('CustomResourceProvider', () => {
  it('is one function per stack and kind, wherever it is asked for', () => {
    const stack = testStack();
    const a = CustomResourceProvider.of(new Construct(stack, 'A'), options);
    const b = CustomResourceProvider.of(new Construct(new Construct(stack, 'B'), 'C'), options);
    const other = CustomResourceProvider.of(stack, { ...options, id: 'Other', handler: 'publish-variant' });
    expect(a).toBe(b);
    expect(other).not.toBe(a);
    expect(a.node.path).toBe('Test/Publisher');
    const t = template(stack);
    t.resourceCountIs('AWS::Lambda::Function', 2);
    t.hasResourceProperties('AWS::Lambda::Function', {
      Description: 'publishes things',
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      Timeout: 120,
      MemorySize: 512,
      LoggingConfig: { LogGroup: Match.anyValue() },
    });
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
    t.hasResourceProperties('AWS::IAM::Role', { Description: 'Publishes things' });
  });

  it('names a clash with another construct of the same id', () => {
    const stack = testStack();
    new Construct(stack, 'Publisher');
    expect(() => CustomResourceProvider.of(stack, options)).toThrow(
      "Test already has a construct 'Publisher'",
    );
  });
});
