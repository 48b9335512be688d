import * as apigw from 'aws-cdk-lib/aws-apigateway';
import * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import type * as cdk from 'aws-cdk-lib';
import { DATATYPES } from '../../lambda/core/types';
import {
  ApiAuthorization,
  InferenceApi,
  InferenceBackend,
  type InferenceApiProps,
} from '../../lib/inference-api';
import { onlyResource, template, testStack } from '../support/cdk';

function backend(stack: cdk.Stack): apigw.Integration {
  const fn = lambda.Function.fromFunctionArn(
    stack,
    'Backend',
    'arn:aws:lambda:us-east-1:123456789012:function:infer:live',
  );
  return new apigw.LambdaIntegration(fn, { allowTestInvoke: false });
}

function build(props: Partial<InferenceApiProps> = {}) {
  const stack = testStack();
  const api = new InferenceApi(stack, 'Api', { integration: backend(stack), ...props });
  return { stack, api, t: template(stack) };
}

/** An internal ALB and a VPC link V2 into its VPC, as OnnxContainerService makes them. */
function loadBalancerBackend(stack: cdk.Stack, linkId = 'Link', port?: number) {
  const vpc =
    (stack.node.tryFindChild('Vpc') as ec2.Vpc | undefined) ?? new ec2.Vpc(stack, 'Vpc', { natGateways: 0 });
  const loadBalancer =
    (stack.node.tryFindChild('Alb') as elbv2.ApplicationLoadBalancer | undefined) ??
    new elbv2.ApplicationLoadBalancer(stack, 'Alb', { vpc, internetFacing: false });
  const vpcLink = new apigwv2.VpcLink(stack, linkId, {
    vpc,
    subnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
  });
  return {
    loadBalancer,
    vpcLink,
    backend: InferenceBackend.fromLoadBalancer({ vpcLink, loadBalancer, port }),
  };
}

function methods(t: ReturnType<typeof template>): Record<string, unknown>[] {
  return Object.values(t.findResources('AWS::ApiGateway::Method')).map(
    (m) => (m as { Properties: Record<string, unknown> }).Properties,
  );
}

describe('InferenceApi', () => {
  test('the V2 routes, each authenticated with IAM by default and validated', () => {
    const { t, stack } = build();
    const paths = Object.values(t.findResources('AWS::ApiGateway::Resource')).map(
      (r) => (r as { Properties: { PathPart: string } }).Properties.PathPart,
    );
    expect(paths.sort()).toEqual(
      [
        'v2',
        'health',
        'live',
        'ready',
        'models',
        '{name}',
        'ready',
        'infer',
        'versions',
        '{version}',
        'ready',
        'infer',
      ].sort(),
    );
    const all = methods(t);
    expect(all.map((m) => m.HttpMethod).sort()).toEqual([...Array<string>(7).fill('GET'), 'POST', 'POST']);
    for (const m of all) {
      expect(m.AuthorizationType).toBe('AWS_IAM');
      expect(m.RequestValidatorId).toBeDefined();
      expect(JSON.stringify(m.Integration)).toContain('AWS_PROXY');
    }
    const infers = all.filter((m) => m.HttpMethod === 'POST');
    expect(infers.map((m) => m.RequestParameters)).toEqual(
      expect.arrayContaining([
        { 'method.request.path.name': true },
        { 'method.request.path.name': true, 'method.request.path.version': true },
      ]),
    );
    for (const infer of infers)
      expect(Object.keys(infer.RequestModels as object)).toEqual(['application/json']);
    t.hasResourceProperties('AWS::ApiGateway::RequestValidator', {
      ValidateRequestBody: true,
      ValidateRequestParameters: true,
    });
    t.hasResourceProperties('AWS::ApiGateway::Model', {
      ContentType: 'application/json',
      Schema: {
        required: ['inputs'],
        // lib/ may not import the runtime, so the list is written twice: this keeps them equal
        properties: {
          inputs: { minItems: 1, items: { properties: { datatype: { enum: [...DATATYPES] } } } },
        },
      },
    });
    t.resourceCountIs('AWS::ApiGateway::UsagePlan', 0);
    t.resourceCountIs('AWS::ApiGateway::ApiKey', 0);
    t.resourceCountIs('AWS::WAFv2::WebACL', 0);
    expect(
      stack.resolve(new InferenceApi(testStack(), 'X', { integration: backend(testStack()) }).authorization),
    ).toBe('IAM');
  });

  test('binary tensors pass through; API errors use the runtime error shape', () => {
    const { t } = build();
    t.hasResourceProperties('AWS::ApiGateway::RestApi', {
      BinaryMediaTypes: ['application/octet-stream'],
      EndpointConfiguration: { Types: ['REGIONAL'] },
    });
    t.resourceCountIs('AWS::ApiGateway::GatewayResponse', 3);
    t.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'BAD_REQUEST_BODY',
      ResponseTemplates: {
        'application/json':
          '{"error": "The request body is not a V2 infer request: $context.error.validationErrorString"}',
      },
    });
    t.hasResourceProperties('AWS::ApiGateway::GatewayResponse', {
      ResponseType: 'DEFAULT_4XX',
      ResponseTemplates: { 'application/json': '{"error": $context.error.messageString}' },
    });
  });

  test('the stage: JSON access logs without bodies, metrics, error logging, throttle', () => {
    const { t } = build();
    const { props } = onlyResource(t, 'AWS::ApiGateway::Stage');
    expect(props).toMatchObject({
      StageName: 'api',
      TracingEnabled: false,
      MethodSettings: [
        expect.objectContaining({
          MetricsEnabled: true,
          LoggingLevel: 'ERROR',
          DataTraceEnabled: false,
          ThrottlingRateLimit: 100,
          ThrottlingBurstLimit: 200,
        }),
      ],
    });
    const format = JSON.parse((props.AccessLogSetting as { Format: string }).Format) as Record<
      string,
      string
    >;
    expect(format).toMatchObject({
      status: '$context.status',
      requestId: '$context.requestId',
      ip: '$context.identity.sourceIp',
    });
    expect(JSON.stringify(format)).not.toMatch(/body/i);
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
    t.resourceCountIs('AWS::ApiGateway::Account', 1);
  });

  test('API keys: a usage plan with throttle and quota, and a key attached to it', () => {
    const { t, api } = build({
      authorization: ApiAuthorization.API_KEY,
      throttle: { rateLimit: 5, burstLimit: 10 },
      quota: { limit: 10_000, period: apigw.Period.DAY },
    });
    for (const m of methods(t)) {
      expect(m.AuthorizationType).toBe('NONE');
      expect(m.ApiKeyRequired).toBe(true);
    }
    t.hasResourceProperties('AWS::ApiGateway::UsagePlan', {
      Throttle: { RateLimit: 5, BurstLimit: 10 },
      Quota: { Limit: 10_000, Period: 'DAY' },
    });
    t.resourceCountIs('AWS::ApiGateway::ApiKey', 1);
    t.resourceCountIs('AWS::ApiGateway::UsagePlanKey', 1);
    expect(api.apiKey).toBeDefined();
    expect(api.usagePlan).toBeDefined();
    // the key's value is generated by API Gateway, never written into the template
    expect(JSON.stringify(t.findResources('AWS::ApiGateway::ApiKey'))).not.toContain('"Value"');
  });

  test('WAF: a new web ACL with managed rules and a rate limit, associated with the stage', () => {
    const { t } = build({ waf: { rateLimitPerIp: 500 } });
    const { props } = onlyResource(t, 'AWS::WAFv2::WebACL');
    expect(props.Scope).toBe('REGIONAL');
    const rules = props.Rules as { Name: string; Statement: Record<string, unknown> }[];
    expect(rules.map((r) => r.Name)).toEqual([
      'RateLimitPerIp',
      'AWSManagedRulesCommonRuleSet',
      'AWSManagedRulesKnownBadInputsRuleSet',
    ]);
    expect(rules[0]?.Statement).toEqual({ RateBasedStatement: { Limit: 500, AggregateKeyType: 'IP' } });
    // tensors are large bodies: the 8 KB body rule only counts
    expect(rules[1]?.Statement).toMatchObject({
      ManagedRuleGroupStatement: {
        RuleActionOverrides: [{ Name: 'SizeRestrictions_BODY', ActionToUse: { Count: {} } }],
      },
    });
    t.resourceCountIs('AWS::WAFv2::WebACLAssociation', 1);
  });

  test('WAF: an existing web ACL is associated, not created', () => {
    const arn = 'arn:aws:wafv2:us-east-1:123456789012:regional/webacl/shared/abc';
    const { t, api } = build({ waf: { existingWebAclArn: arn } });
    t.resourceCountIs('AWS::WAFv2::WebACL', 0);
    t.hasResourceProperties('AWS::WAFv2::WebACLAssociation', { WebACLArn: arn });
    expect(api.webAclArn).toBe(arn);
  });

  test('stage name, retention, logging level, tracing and the account role are props', () => {
    const { t } = build({
      stageName: 'prod',
      accessLogRetention: logs.RetentionDays.ONE_YEAR,
      executionLogging: apigw.MethodLoggingLevel.INFO,
      tracing: true,
      cloudWatchRole: false,
    });
    const { props } = onlyResource(t, 'AWS::ApiGateway::Stage');
    expect(props).toMatchObject({
      StageName: 'prod',
      TracingEnabled: true,
      MethodSettings: [expect.objectContaining({ LoggingLevel: 'INFO' })],
    });
    t.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
    t.resourceCountIs('AWS::ApiGateway::Account', 0);
  });

  test('invokeAccounts: a resource policy lets those accounts call the API; none by default', () => {
    const { t } = build({ invokeAccounts: ['210987654321'] });
    t.hasResourceProperties('AWS::ApiGateway::RestApi', {
      Policy: {
        Statement: [
          {
            Action: 'execute-api:Invoke',
            Effect: 'Allow',
            Principal: {
              AWS: { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::210987654321:root']] },
            },
            Resource: 'execute-api:/*',
          },
        ],
      },
    });
    expect(JSON.stringify(build().t.findResources('AWS::ApiGateway::RestApi'))).not.toContain('"Policy"');
    expect(() => build({ invokeAccounts: ['2109'] })).toThrow(
      /invokeAccounts holds AWS account ids \(12 digits\), got "2109"/,
    );
    expect(() =>
      build({ invokeAccounts: ['210987654321'], authorization: ApiAuthorization.API_KEY }),
    ).toThrow(
      /invokeAccounts grants IAM principals of other accounts; it needs IAM authorization, got API_KEY/,
    );
  });

  test('grantInvoke allows execute-api:Invoke on the V2 routes of this stage', () => {
    const stack = testStack();
    const api = new InferenceApi(stack, 'Api', { integration: backend(stack) });
    const caller = new iam.Role(stack, 'Caller', { assumedBy: new iam.AccountRootPrincipal() });
    api.grantInvoke(caller);
    const policy = JSON.stringify(template(stack).findResources('AWS::IAM::Policy'));
    expect(policy).toContain('execute-api:Invoke');
    expect(policy).toContain('"/*/v2/*"');
    expect(policy).toContain('"/GET/v2"');
  });

  test('URLs and metrics', () => {
    const { stack, api } = build();
    expect(JSON.stringify(stack.resolve(api.inferUrl('iris')))).toContain('v2/models/iris/infer');
    expect(api.metricServerError().metricName).toBe('5XXError');
    expect(api.metricClientError().metricName).toBe('4XXError');
    expect(api.metricLatency().statistic).toBe('p99');
    expect(api.metricErrorRate('5XX').expression).toContain('errors / requests');
  });

  test('a load balancer backend: each route proxies to its own path through the VPC link V2', () => {
    const stack = testStack();
    const { backend, loadBalancer, vpcLink } = loadBalancerBackend(stack);
    new InferenceApi(stack, 'Api', { backend });
    const t = template(stack);
    const all = methods(t);
    expect(all).toHaveLength(9);
    const uriPaths: string[] = [];
    for (const m of all) {
      // the same auth and validation as with a Lambda behind it
      expect(m.AuthorizationType).toBe('AWS_IAM');
      expect(m.RequestValidatorId).toBeDefined();
      const integration = m.Integration as Record<string, unknown>;
      const resolved = (value: string): unknown => stack.resolve(value);
      expect(integration).toMatchObject({
        Type: 'HTTP_PROXY',
        IntegrationHttpMethod: m.HttpMethod,
        ConnectionType: 'VPC_LINK',
        ConnectionId: resolved(vpcLink.vpcLinkId),
        IntegrationTarget: resolved(loadBalancer.loadBalancerArn),
      });
      const uri = integration.Uri as { 'Fn::Join': [string, unknown[]] };
      expect(uri['Fn::Join'][1][0]).toBe('http://');
      expect(uri['Fn::Join'][1][1]).toEqual(resolved(loadBalancer.loadBalancerDnsName));
      uriPaths.push(uri['Fn::Join'][1][2] as string);
    }
    expect(uriPaths.sort()).toEqual(
      [
        ':80/v2',
        ':80/v2/health/live',
        ':80/v2/health/ready',
        ':80/v2/models/{name}',
        ':80/v2/models/{name}/ready',
        ':80/v2/models/{name}/infer',
        ':80/v2/models/{name}/versions/{version}',
        ':80/v2/models/{name}/versions/{version}/ready',
        ':80/v2/models/{name}/versions/{version}/infer',
      ].sort(),
    );
    // {name} and {version} reach the backend path
    const versioned = all.find(
      (m) => m.HttpMethod === 'POST' && JSON.stringify(m.Integration).includes('/versions/{version}/infer'),
    );
    expect((versioned?.Integration as { RequestParameters: unknown }).RequestParameters).toEqual({
      'integration.request.path.name': 'method.request.path.name',
      'integration.request.path.version': 'method.request.path.version',
    });
    const live = all.find((m) => JSON.stringify(m.Integration).includes('/v2/health/live'));
    expect((live?.Integration as { RequestParameters?: unknown }).RequestParameters).toEqual({});
  });

  test('a load balancer backend: the listener port is a prop', () => {
    const stack = testStack();
    new InferenceApi(stack, 'Api', { backend: loadBalancerBackend(stack, 'Link', 8000).backend });
    expect(JSON.stringify(template(stack).findResources('AWS::ApiGateway::Method'))).toContain(
      ':8000/v2/models/{name}/infer',
    );
  });

  test('another VPC link gives another deployment, though the link is set outside the L2 method props', () => {
    const deploymentId = (linkId: string): string => {
      const stack = testStack();
      new InferenceApi(stack, 'Api', { backend: loadBalancerBackend(stack, linkId).backend });
      return onlyResource(template(stack), 'AWS::ApiGateway::Deployment').logicalId;
    };
    expect(deploymentId('LinkA')).not.toBe(deploymentId('LinkB'));
    expect(deploymentId('LinkA')).toBe(deploymentId('LinkA'));
  });

  test('InferenceBackend.fromIntegration puts the one integration on every route, as `integration` does', () => {
    const viaBackend = testStack();
    new InferenceApi(viaBackend, 'Api', { backend: InferenceBackend.fromIntegration(backend(viaBackend)) });
    const viaIntegration = testStack();
    new InferenceApi(viaIntegration, 'Api', { integration: backend(viaIntegration) });
    expect(template(viaBackend).toJSON()).toEqual(template(viaIntegration).toJSON());
  });

  test('backend and integration together, or neither, are refused', () => {
    const stack = testStack();
    const integration = backend(stack);
    expect(
      () =>
        new InferenceApi(stack, 'Both', {
          integration,
          backend: InferenceBackend.fromIntegration(integration),
        }),
    ).toThrow(/give exactly one of backend or integration, got both/);
    expect(() => new InferenceApi(stack, 'Neither', {})).toThrow(
      /give exactly one of backend or integration, got neither/,
    );
  });

  test.each<[string, Partial<InferenceApiProps>, RegExp]>([
    [
      'a quota with IAM auth',
      { quota: { limit: 5, period: apigw.Period.DAY } },
      /quota applies to API keys; set authorization to API_KEY/,
    ],
    [
      'a zero quota',
      { authorization: ApiAuthorization.API_KEY, quota: { limit: 0, period: apigw.Period.DAY } },
      /quota.limit must be a positive integer, got 0/,
    ],
    [
      'a zero rate',
      { throttle: { rateLimit: 0, burstLimit: 1 } },
      /throttle needs rateLimit > 0 .* got {"rateLimit":0,"burstLimit":1}/,
    ],
    [
      'a stage name with a slash',
      { stageName: 'v1/x' },
      /stageName may hold letters, digits and '_' only, got "v1\/x"/,
    ],
    [
      'a WAF rate under 10',
      { waf: { rateLimitPerIp: 5 } },
      /waf.rateLimitPerIp must be an integer of at least 10 .* got 5/,
    ],
  ])('%s is refused with a message naming it', (_name, props, message) => {
    const stack = testStack();
    expect(() => new InferenceApi(stack, 'Api', { integration: backend(stack), ...props })).toThrow(message);
  });
});
