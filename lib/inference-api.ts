import * as cdk from 'aws-cdk-lib';
import * as apigw from 'aws-cdk-lib/aws-apigateway';
import type * as apigwv2 from 'aws-cdk-lib/aws-apigatewayv2';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import type * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { checkPositiveInteger } from './validate';

/** How callers prove who they are. Every route needs one or the other. */
export enum ApiAuthorization {
  /** SigV4-signed requests; grant callers with `grantInvoke`. */
  IAM = 'IAM',
  /** An `x-api-key` header, with a usage plan's throttle and quota per key. */
  API_KEY = 'API_KEY',
}

export interface ApiThrottle {
  /** Steady requests per second. */
  readonly rateLimit: number;
  /** Requests allowed in a burst above the rate. */
  readonly burstLimit: number;
}

export interface ApiQuota {
  readonly limit: number;
  readonly period: apigw.Period;
}

export interface InferenceApiWafOptions {
  /**
   * Associate this web ACL (a REGIONAL one) instead of creating one.
   * @default - a new web ACL with AWS managed rules and a rate limit
   */
  readonly existingWebAclArn?: string;
  /**
   * Requests per 5 minutes from one IP before WAF blocks it, in the web ACL this construct creates.
   * @default 2000
   */
  readonly rateLimitPerIp?: number;
}

/** The stage an InferenceApi deploys to unless `stageName` says otherwise. */
export const DEFAULT_API_STAGE_NAME = 'api';

/** One V2 route, as a backend sees it. */
export interface InferenceRoute {
  /** `GET` or `POST`. */
  readonly httpMethod: string;
  /** The resource path, with its parameters in braces: `/v2/models/{name}/infer`. */
  readonly path: string;
  /** The path parameters in `path`, in order: `name`, `version`. */
  readonly pathParameters: string[];
}

/** What one route is proxied to. */
export interface InferenceBackendConfig {
  readonly integration: apigw.Integration;
  /**
   * Properties set on the method's CloudFormation `Integration` as they are, for what apigw.Integration
   * cannot express.
   * @default - none
   */
  readonly integrationOverrides?: Record<string, unknown>;
}

export interface LoadBalancerBackendProps {
  /** A VPC link V2 into the load balancer's VPC; the load balancer must accept its security group. */
  readonly vpcLink: apigwv2.IVpcLink;
  readonly loadBalancer: elbv2.IApplicationLoadBalancer;
  /** The HTTP listener's port. @default 80 */
  readonly port?: number;
}

/**
 * The backend behind InferenceApi's routes: a Lambda (or any single integration), or an Application Load
 * Balancer reached through a VPC link V2, where each route needs its own backend URL.
 */
export abstract class InferenceBackend {
  /** The same integration on every route, such as `new apigw.LambdaIntegration(onnxFunction.alias)`. */
  public static fromIntegration(integration: apigw.Integration): InferenceBackend {
    return new (class extends InferenceBackend {
      public bind(): InferenceBackendConfig {
        return { integration };
      }
    })();
  }

  /**
   * An HTTP proxy to an Application Load Balancer through a VPC link V2: each route goes to the same path on
   * the load balancer, with `{name}` and `{version}` passed on. API Gateway puts the stage name in front of
   * that path, so the server must strip it (OnnxContainerService's `pathPrefix`).
   */
  public static fromLoadBalancer(props: LoadBalancerBackendProps): InferenceBackend {
    const port = props.port ?? 80;
    return new (class extends InferenceBackend {
      public bind(route: InferenceRoute): InferenceBackendConfig {
        const requestParameters = Object.fromEntries(
          route.pathParameters.map((p) => [`integration.request.path.${p}`, `method.request.path.${p}`]),
        );
        return {
          integration: new apigw.HttpIntegration(
            `http://${props.loadBalancer.loadBalancerDnsName}:${port}${route.path}`,
            {
              proxy: true,
              httpMethod: route.httpMethod,
              options: { requestParameters },
            },
          ),
          // apigw.Integration knows VPC links V1 (to an NLB) only; a VPC link V2 to an ALB needs these.
          integrationOverrides: {
            ConnectionType: 'VPC_LINK',
            ConnectionId: props.vpcLink.vpcLinkId,
            IntegrationTarget: props.loadBalancer.loadBalancerArn,
          },
        };
      }
    })();
  }

  /** The integration for one route. */
  public abstract bind(route: InferenceRoute): InferenceBackendConfig;
}

export interface InferenceApiProps {
  /**
   * What every V2 route is proxied to: `InferenceBackend.fromIntegration(...)` for a Lambda,
   * `containerService.inferenceBackend()` for a Fargate service. Give this or `integration`.
   * @default - none
   */
  readonly backend?: InferenceBackend;
  /**
   * One integration for every route, such as `new apigw.LambdaIntegration(onnxFunction.alias)`: the same as
   * `backend: InferenceBackend.fromIntegration(integration)`. Give this or `backend`.
   * @default - none
   */
  readonly integration?: apigw.Integration;
  /** @default ApiAuthorization.IAM */
  readonly authorization?: ApiAuthorization;
  /**
   * Throttle for the stage, and for each API key's usage plan.
   * @default - 100 requests/s, bursts of 200
   */
  readonly throttle?: ApiThrottle;
  /**
   * A quota per API key (API_KEY authorization only).
   * @default - none
   */
  readonly quota?: ApiQuota;
  /** @default DEFAULT_API_STAGE_NAME ('api') */
  readonly stageName?: string;
  /**
   * Retention of the access log group.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly accessLogRetention?: logs.RetentionDays;
  /**
   * Execution logging for every method. Request and response bodies are never logged.
   * @default apigw.MethodLoggingLevel.ERROR
   */
  readonly executionLogging?: apigw.MethodLoggingLevel;
  /**
   * Create the account-wide role API Gateway needs to write execution logs. Set false when the account
   * already has one (it is one setting per account and region).
   * @default true
   */
  readonly cloudWatchRole?: boolean;
  /** @default false */
  readonly tracing?: boolean;
  /**
   * Put a WAF web ACL in front of the stage.
   * @default - none
   */
  readonly waf?: InferenceApiWafOptions;
  /** @default - a description naming the construct */
  readonly description?: string;
  /**
   * Other AWS accounts whose principals may call the API (IAM auth only): a resource policy allows them
   * `execute-api:Invoke`; each caller still needs that permission in its own account. For a pipeline's smoke
   * test or a client in another account.
   * @default - no resource policy: callers in this account only
   */
  readonly invokeAccounts?: string[];
}

/** The request body schema API Gateway checks for JSON infer requests before the backend sees them. */
const INFER_SCHEMA: apigw.JsonSchema = {
  schema: apigw.JsonSchemaVersion.DRAFT4,
  title: 'InferRequest',
  type: apigw.JsonSchemaType.OBJECT,
  required: ['inputs'],
  properties: {
    id: { type: apigw.JsonSchemaType.STRING },
    inputs: {
      type: apigw.JsonSchemaType.ARRAY,
      minItems: 1,
      items: {
        type: apigw.JsonSchemaType.OBJECT,
        required: ['name', 'shape', 'datatype'],
        properties: {
          name: { type: apigw.JsonSchemaType.STRING },
          shape: {
            type: apigw.JsonSchemaType.ARRAY,
            items: { type: apigw.JsonSchemaType.INTEGER, minimum: 0 },
          },
          datatype: {
            type: apigw.JsonSchemaType.STRING,
            enum: [
              'BOOL',
              'INT8',
              'INT16',
              'INT32',
              'INT64',
              'UINT8',
              'UINT16',
              'UINT32',
              'UINT64',
              'FP32',
              'FP64',
              'BYTES',
            ],
          },
        },
      },
    },
    outputs: {
      type: apigw.JsonSchemaType.ARRAY,
      items: {
        type: apigw.JsonSchemaType.OBJECT,
        required: ['name'],
        properties: { name: { type: apigw.JsonSchemaType.STRING } },
      },
    },
  },
};

/** API Gateway's own errors, in the runtime's `{"error": "..."}` shape. */
const ERROR_TEMPLATE = { 'application/json': '{"error": $context.error.messageString}' };

/**
 * An API Gateway REST API with the Open Inference Protocol (KServe V2) routes, proxied to one backend.
 * Authenticated by default, throttled, validated, with JSON access logs and stage metrics.
 */
export class InferenceApi extends Construct {
  public readonly api: apigw.RestApi;
  public readonly stage: apigw.Stage;
  public readonly accessLogGroup: logs.LogGroup;
  public readonly authorization: ApiAuthorization;
  /** The API key, with API_KEY authorization. Its value is in API Gateway, never in the template. */
  public readonly apiKey?: apigw.IApiKey;
  public readonly usagePlan?: apigw.UsagePlan;
  public readonly webAclArn?: string;
  /** The stage's base URL, ending in `/`. */
  public readonly url: string;

  constructor(scope: Construct, id: string, props: InferenceApiProps) {
    super(scope, id);
    if ((props.backend === undefined) === (props.integration === undefined)) {
      throw new Error(
        `InferenceApi ${this.node.path}: give exactly one of backend or integration, got ${props.backend ? 'both' : 'neither'}`,
      );
    }
    const throttle = props.throttle ?? { rateLimit: 100, burstLimit: 200 };
    if (!(throttle.rateLimit > 0) || !Number.isInteger(throttle.burstLimit) || throttle.burstLimit < 1) {
      throw new Error(
        `InferenceApi ${this.node.path}: throttle needs rateLimit > 0 and an integer burstLimit >= 1, got ${JSON.stringify(throttle)}`,
      );
    }
    this.authorization = props.authorization ?? ApiAuthorization.IAM;
    if (props.quota && this.authorization !== ApiAuthorization.API_KEY) {
      throw new Error(
        `InferenceApi ${this.node.path}: quota applies to API keys; set authorization to API_KEY or drop the quota`,
      );
    }
    checkPositiveInteger(`InferenceApi ${this.node.path}`, 'quota.limit', props.quota?.limit);
    const stageName = props.stageName ?? DEFAULT_API_STAGE_NAME;
    if (!/^[A-Za-z0-9_]{1,128}$/.test(stageName)) {
      throw new Error(
        `InferenceApi ${this.node.path}: stageName may hold letters, digits and '_' only, got ${JSON.stringify(stageName)}`,
      );
    }
    const invokeAccounts = props.invokeAccounts ?? [];
    if (invokeAccounts.length > 0 && this.authorization !== ApiAuthorization.IAM) {
      throw new Error(
        `InferenceApi ${this.node.path}: invokeAccounts grants IAM principals of other accounts; it needs IAM authorization, got ${this.authorization}`,
      );
    }
    for (const account of invokeAccounts) {
      if (!cdk.Token.isUnresolved(account) && !/^\d{12}$/.test(account)) {
        throw new Error(
          `InferenceApi ${this.node.path}: invokeAccounts holds AWS account ids (12 digits), got ${JSON.stringify(account)}`,
        );
      }
    }
    const rateLimitPerIp = props.waf?.rateLimitPerIp ?? 2000;
    if (!Number.isInteger(rateLimitPerIp) || rateLimitPerIp < 10) {
      throw new Error(
        `InferenceApi ${this.node.path}: waf.rateLimitPerIp must be an integer of at least 10 (WAF's minimum), got ${rateLimitPerIp}`,
      );
    }

    this.accessLogGroup = new logs.LogGroup(this, 'AccessLogs', {
      retention: props.accessLogRetention ?? logs.RetentionDays.ONE_MONTH,
      removalPolicy: cdk.RemovalPolicy.DESTROY,
    });
    const iamAuth = this.authorization === ApiAuthorization.IAM;
    this.api = new apigw.RestApi(this, 'Api', {
      description: props.description ?? `model-deploy-kit inference API (${this.node.path})`,
      endpointConfiguration: { types: [apigw.EndpointType.REGIONAL] },
      // The binary tensor extension: API Gateway passes these bodies base64-encoded.
      binaryMediaTypes: ['application/octet-stream'],
      cloudWatchRole: props.cloudWatchRole ?? true,
      policy:
        invokeAccounts.length > 0
          ? new iam.PolicyDocument({
              statements: [
                new iam.PolicyStatement({
                  principals: invokeAccounts.map((a) => new iam.AccountPrincipal(a)),
                  actions: ['execute-api:Invoke'],
                  resources: ['execute-api:/*'],
                }),
              ],
            })
          : undefined,
      // One role per account and region: another stack's API may rely on it after this one is gone.
      cloudWatchRoleRemovalPolicy: (props.cloudWatchRole ?? true) ? cdk.RemovalPolicy.RETAIN : undefined,
      apiKeySourceType: iamAuth ? undefined : apigw.ApiKeySourceType.HEADER,
      defaultMethodOptions: iamAuth
        ? { authorizationType: apigw.AuthorizationType.IAM }
        : { authorizationType: apigw.AuthorizationType.NONE, apiKeyRequired: true },
      deployOptions: {
        stageName,
        accessLogDestination: new apigw.LogGroupLogDestination(this.accessLogGroup),
        accessLogFormat: apigw.AccessLogFormat.jsonWithStandardFields({
          caller: true,
          httpMethod: true,
          ip: true,
          protocol: true,
          requestTime: true,
          resourcePath: true,
          responseLength: true,
          status: true,
          user: true,
        }),
        metricsEnabled: true,
        loggingLevel: props.executionLogging ?? apigw.MethodLoggingLevel.ERROR,
        dataTraceEnabled: false,
        tracingEnabled: props.tracing ?? false,
        throttlingRateLimit: throttle.rateLimit,
        throttlingBurstLimit: throttle.burstLimit,
      },
    });
    this.stage = this.api.deploymentStage;
    const cloudWatchRole = this.api.node.tryFindChild('CloudWatchRole');
    if (cloudWatchRole) {
      cdk.Validations.of(cloudWatchRole).acknowledge({
        id: 'AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs]',
        reason:
          "API Gateway's account-level logging role: the AWS managed policy is the documented, maintained grant for it, and the role can be assumed by API Gateway only.",
      });
    }

    this.api.addGatewayResponse('Default4xx', {
      type: apigw.ResponseType.DEFAULT_4XX,
      templates: ERROR_TEMPLATE,
    });
    this.api.addGatewayResponse('Default5xx', {
      type: apigw.ResponseType.DEFAULT_5XX,
      templates: ERROR_TEMPLATE,
    });
    this.api.addGatewayResponse('BadRequestBodyResponse', {
      type: apigw.ResponseType.BAD_REQUEST_BODY,
      templates: {
        'application/json':
          '{"error": "The request body is not a V2 infer request: $context.error.validationErrorString"}',
      },
    });

    const validator = new apigw.RequestValidator(this, 'Validator', {
      restApi: this.api,
      validateRequestBody: true,
      validateRequestParameters: true,
    });
    const inferModel = this.api.addModel('InferRequest', {
      contentType: 'application/json',
      schema: INFER_SCHEMA,
    });
    const backend = props.backend ?? InferenceBackend.fromIntegration(props.integration as apigw.Integration);
    const route = (resource: apigw.IResource, httpMethod: string, options: apigw.MethodOptions): void => {
      const path = resource.path;
      const pathParameters = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1] as string);
      const config = backend.bind({ httpMethod, path, pathParameters });
      const method = resource.addMethod(httpMethod, config.integration, {
        requestValidator: validator,
        ...options,
      });
      const overrides = config.integrationOverrides ?? {};
      if (Object.keys(overrides).length === 0) return;
      for (const [key, value] of Object.entries(overrides)) {
        (method.node.defaultChild as apigw.CfnMethod).addPropertyOverride(`Integration.${key}`, value);
      }
      // Overrides are not in the method props the deployment hashes: a new target must still redeploy.
      this.api.latestDeployment?.addToLogicalId({ httpMethod, path, overrides });
    };
    const nameParam = { 'method.request.path.name': true };

    const v2 = this.api.root.addResource('v2');
    route(v2, 'GET', {});
    const health = v2.addResource('health');
    route(health.addResource('live'), 'GET', {});
    route(health.addResource('ready'), 'GET', {});
    // /v2/models/{name}/... and the same under /versions/{version}, as the runtime answers both.
    const modelRoutes = (resource: apigw.IResource, params: Record<string, boolean>): void => {
      route(resource, 'GET', { requestParameters: params });
      route(resource.addResource('ready'), 'GET', { requestParameters: params });
      route(resource.addResource('infer'), 'POST', {
        requestParameters: params,
        requestModels: { 'application/json': inferModel },
      });
    };
    const model = v2.addResource('models').addResource('{name}');
    modelRoutes(model, nameParam);
    modelRoutes(model.addResource('versions').addResource('{version}'), {
      ...nameParam,
      'method.request.path.version': true,
    });

    if (!iamAuth) {
      this.usagePlan = this.api.addUsagePlan('UsagePlan', {
        description: `Throttle and quota for ${this.node.path}`,
        throttle: { rateLimit: throttle.rateLimit, burstLimit: throttle.burstLimit },
        quota: props.quota,
        apiStages: [{ api: this.api, stage: this.stage }],
      });
      this.apiKey = this.api.addApiKey('ApiKey', { description: `Caller key for ${this.node.path}` });
      this.usagePlan.addApiKey(this.apiKey);
      cdk.Validations.of(this.api).acknowledge({
        id: 'AwsSolutions-APIG4',
        reason:
          'API_KEY authorization was chosen: every method requires an API key under a throttled usage plan.',
      });
    }
    cdk.Validations.of(this.api).acknowledge({
      id: 'AwsSolutions-COG4',
      reason:
        'Machine-to-machine inference API: callers authenticate with IAM (SigV4) or API keys, not Cognito users.',
    });

    if (props.waf) {
      this.webAclArn = props.waf.existingWebAclArn ?? this.createWebAcl(rateLimitPerIp).attrArn;
      new wafv2.CfnWebACLAssociation(this, 'WebAclAssociation', {
        resourceArn: this.stage.stageArn,
        webAclArn: this.webAclArn,
      });
    } else {
      cdk.Validations.of(this.stage).acknowledge({
        id: 'AwsSolutions-APIG3',
        reason:
          'WAF is a prop (waf); this stage runs without it by configuration, behind authentication and throttling.',
      });
    }
    this.url = this.api.url;
  }

  private createWebAcl(rateLimitPerIp: number): wafv2.CfnWebACL {
    const visibility = (metricName: string) => ({
      cloudWatchMetricsEnabled: true,
      metricName,
      sampledRequestsEnabled: false,
    });
    const managed = (
      name: string,
      priority: number,
      excluded: string[] = [],
    ): wafv2.CfnWebACL.RuleProperty => ({
      name,
      priority,
      overrideAction: { none: {} },
      statement: {
        managedRuleGroupStatement: {
          vendorName: 'AWS',
          name,
          ruleActionOverrides: excluded.map((ruleName) => ({ name: ruleName, actionToUse: { count: {} } })),
        },
      },
      visibilityConfig: visibility(name),
    });
    return new wafv2.CfnWebACL(this, 'WebAcl', {
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: visibility('InferenceApi'),
      rules: [
        {
          name: 'RateLimitPerIp',
          priority: 0,
          action: { block: {} },
          statement: { rateBasedStatement: { limit: rateLimitPerIp, aggregateKeyType: 'IP' } },
          visibilityConfig: visibility('RateLimitPerIp'),
        },
        // Tensors are large bodies: the common rule set's 8 KB body limit would block real requests.
        managed('AWSManagedRulesCommonRuleSet', 1, ['SizeRestrictions_BODY']),
        managed('AWSManagedRulesKnownBadInputsRuleSet', 2),
      ],
    });
  }

  /** The URL of one model's infer route. */
  public inferUrl(modelName: string): string {
    return `${this.url}v2/models/${modelName}/infer`;
  }

  /** Lets an IAM principal call every V2 route on this stage (IAM authorization). */
  public grantInvoke(grantee: iam.IGrantable): iam.Grant {
    return iam.Grant.addToPrincipal({
      grantee,
      actions: ['execute-api:Invoke'],
      resourceArns: [
        this.api.arnForExecuteApi('*', '/v2/*', this.stage.stageName),
        this.api.arnForExecuteApi('GET', '/v2', this.stage.stageName),
      ],
    });
  }

  public metricCount(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stage.metricCount({ statistic: 'Sum', ...props });
  }

  public metricClientError(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stage.metricClientError({ statistic: 'Sum', ...props });
  }

  public metricServerError(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stage.metricServerError({ statistic: 'Sum', ...props });
  }

  /** End-to-end latency at API Gateway; p99 by default. */
  public metricLatency(props?: cloudwatch.MetricOptions): cloudwatch.Metric {
    return this.stage.metricLatency({ statistic: 'p99', ...props });
  }

  /** 4XX or 5XX responses as a percentage of requests. */
  public metricErrorRate(kind: '4XX' | '5XX', props?: { period?: cdk.Duration }): cloudwatch.MathExpression {
    const period = props?.period ?? cdk.Duration.minutes(5);
    return new cloudwatch.MathExpression({
      expression: 'IF(requests > 0, 100 * errors / requests, 0)',
      usingMetrics: {
        errors: kind === '4XX' ? this.metricClientError({ period }) : this.metricServerError({ period }),
        requests: this.metricCount({ period }),
      },
      label: `${kind} rate (%)`,
      period,
    });
  }
}
