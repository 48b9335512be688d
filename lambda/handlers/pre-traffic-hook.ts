/**
 * The CodeDeploy pre-traffic hook of a canary release: before any traffic moves, it sends the manifest's
 * `sample` request to the NEW function version (as API Gateway would, a REST proxy event) and tells
 * CodeDeploy Succeeded or Failed. A failed check stops the deployment and the alias stays where it was.
 *
 * Environment:
 * - TARGET_VERSION_ARN: the version under test. CodeDeploy's event does not name it.
 * - MANIFEST_URI: `s3://.../model.json` (S3 delivery), or unset to read `model.json` from the hook's own
 *   asset (bundled delivery).
 *
 * Two steps: `checkNewVersion` (reads the manifest, invokes, compares) and `reportStatus`, the single
 * CodeDeploy call. Request and response bodies are never logged; differences name output values of the
 * manifest's own sample, not of any user's traffic.
 */
import * as path from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { CodeDeployClient, PutLifecycleEventHookExecutionStatusCommand } from '@aws-sdk/client-codedeploy';
import { InvokeCommand, LambdaClient } from '@aws-sdk/client-lambda';
import type { APIGatewayProxyEvent } from 'aws-lambda';
import { proxyEvent } from '../core/proxy-event';
import {
  readManifest,
  runSampleCheck,
  type InvokeResult,
  type SampleCheckResult,
} from '../core/sample-check';
import type { InferRequest } from '../core/types';

const logger = new Logger({ serviceName: 'model-deploy-kit' });
// Once per container. AWS_ENDPOINT_URL, when set (moto), is honoured by the SDK itself.
export const lambdaClient = new LambdaClient({});
export const codedeploy = new CodeDeployClient({});

export interface PreTrafficHookEvent {
  readonly DeploymentId: string;
  readonly LifecycleEventHookExecutionId: string;
}

/** The proxy event for `POST /v2/models/{name}/infer`. */
export function inferEvent(modelName: string, request: InferRequest): APIGatewayProxyEvent {
  return proxyEvent('POST', `/v2/models/${encodeURIComponent(modelName)}/infer`, request);
}

/** Invokes a function version with a proxy event; its proxy result becomes status and body. */
export async function invokeVersion(
  client: LambdaClient,
  functionArn: string,
  modelName: string,
  request: InferRequest,
): Promise<InvokeResult> {
  const res = await client.send(
    new InvokeCommand({
      FunctionName: functionArn,
      Payload: Buffer.from(JSON.stringify(inferEvent(modelName, request))),
    }),
  );
  const text = res.Payload ? Buffer.from(res.Payload).toString('utf8') : '';
  if (res.FunctionError) {
    let message = text;
    try {
      const err = JSON.parse(text) as { errorType?: string; errorMessage?: string };
      message = `${err.errorType ?? 'Error'}: ${err.errorMessage ?? text}`;
    } catch {
      // Not JSON: keep the text as it is.
    }
    throw new Error(`${functionArn} failed (${res.FunctionError}): ${message}`);
  }
  const result = JSON.parse(text) as { statusCode?: number; body?: string; isBase64Encoded?: boolean };
  if (typeof result.statusCode !== 'number') {
    throw new Error(`${functionArn} did not answer with an API Gateway proxy result`);
  }
  const body = result.isBase64Encoded
    ? Buffer.from(result.body ?? '', 'base64').toString('utf8')
    : result.body;
  return { status: result.statusCode, body: body ?? '' };
}

/** Where the hook reads model.json: MANIFEST_URI, else its own asset. */
export function manifestLocation(env: NodeJS.ProcessEnv): string {
  return env.MANIFEST_URI ?? path.join(env.LAMBDA_TASK_ROOT ?? process.cwd(), 'model.json');
}

/** Reads the manifest and runs its sample against the version under test. Never throws: a problem fails. */
export async function checkNewVersion(
  env: NodeJS.ProcessEnv = process.env,
  client: LambdaClient = lambdaClient,
): Promise<SampleCheckResult> {
  const target = env.TARGET_VERSION_ARN;
  if (!target) return { passed: false, model: '?', differences: ['TARGET_VERSION_ARN is not set'] };
  const location = manifestLocation(env);
  let manifest;
  try {
    manifest = await readManifest(location);
  } catch (err) {
    return {
      passed: false,
      model: '?',
      differences: [`cannot read the manifest: ${(err as Error).message}`],
    };
  }
  return runSampleCheck(manifest, (request) => invokeVersion(client, target, manifest.name, request));
}

/** The one call moto cannot serve: CodeDeploy's verdict for this hook execution. */
export async function reportStatus(event: PreTrafficHookEvent, passed: boolean): Promise<void> {
  await codedeploy.send(
    new PutLifecycleEventHookExecutionStatusCommand({
      deploymentId: event.DeploymentId,
      lifecycleEventHookExecutionId: event.LifecycleEventHookExecutionId,
      status: passed ? 'Succeeded' : 'Failed',
    }),
  );
}

export async function handler(event: PreTrafficHookEvent): Promise<void> {
  const result = await checkNewVersion();
  const fields = {
    deploymentId: event.DeploymentId,
    target: process.env.TARGET_VERSION_ARN,
    model: result.model,
    status: result.status,
  };
  if (result.passed) logger.info('pre-traffic sample check passed', fields);
  else
    logger.error('pre-traffic sample check failed: the deployment stops', {
      ...fields,
      differences: result.differences,
    });
  // If this call fails the function errors, and CodeDeploy fails the hook when it times out.
  await reportStatus(event, result.passed);
}
