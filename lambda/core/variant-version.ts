/**
 * Publishing an A/B variant's Lambda version: the logic behind `Custom::ModelVariantVersion`.
 *
 * A Lambda version is a snapshot of the function's code and configuration, and CloudFormation gives a function
 * one configuration per deploy: the primary variant's. The other variant's version differs only in a few
 * environment variables (its MODEL_URI, MODEL_SHA256, MODEL_VARIANT), so this sets those on $LATEST, publishes,
 * and puts the primary's values back, each step waiting for Lambda to finish the last. The alias then routes
 * between the two versions. The restore runs even when publishing fails, and it sets the primary's values
 * (given with the request), not whatever it read first, so a run interrupted earlier cannot leave the
 * challenger's settings behind on $LATEST.
 */
import {
  GetFunctionConfigurationCommand,
  PublishVersionCommand,
  UpdateFunctionConfigurationCommand,
  type FunctionConfiguration,
  type LambdaClient,
} from '@aws-sdk/client-lambda';
import type { CustomResourceEvent, CustomResourceOutcome } from './custom-resource';

/** The ResourceProperties of a `Custom::ModelVariantVersion`, as the `OnnxFunction` construct sets them. */
export interface VariantVersionRequest {
  readonly functionName: string;
  /** The variant's environment variables that differ from the primary's. */
  readonly variantEnvironment: Readonly<Record<string, string>>;
  /** The primary's values of the same variables: what $LATEST gets back. */
  readonly primaryEnvironment: Readonly<Record<string, string>>;
  readonly description: string;
}

export interface WaitOptions {
  /** @default 500 */
  readonly pollMs?: number;
  /** @default 300000: Lambda takes seconds, a function in a VPC can take minutes */
  readonly timeoutMs?: number;
}

function stringMap(value: unknown, key: string): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`${key} must be an object of strings`);
  }
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
    if (typeof v !== 'string') throw new Error(`${key}.${k} must be a string`);
    out[k] = v;
  }
  return out;
}

export function variantVersionRequestFrom(
  props: Readonly<Record<string, unknown>> | undefined,
): VariantVersionRequest {
  const p = props ?? {};
  const functionName = p.FunctionName;
  if (typeof functionName !== 'string' || functionName === '') {
    throw new Error('FunctionName must be a non-empty string');
  }
  const variantEnvironment = stringMap(p.VariantEnvironment, 'VariantEnvironment');
  const primaryEnvironment = stringMap(p.PrimaryEnvironment, 'PrimaryEnvironment');
  const keys = (m: Record<string, string>) => Object.keys(m).sort().join(',');
  if (Object.keys(variantEnvironment).length === 0 || keys(variantEnvironment) !== keys(primaryEnvironment)) {
    throw new Error(
      'VariantEnvironment and PrimaryEnvironment must set the same, non-empty set of variables',
    );
  }
  return {
    functionName,
    variantEnvironment,
    primaryEnvironment,
    description: typeof p.Description === 'string' ? p.Description : '',
  };
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The function's $LATEST configuration once no update is in progress. */
async function settled(
  lambda: LambdaClient,
  functionName: string,
  wait: WaitOptions,
): Promise<FunctionConfiguration> {
  const deadline = Date.now() + (wait.timeoutMs ?? 300_000);
  for (;;) {
    const config = await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: functionName }));
    if (config.LastUpdateStatus === 'Failed') {
      throw new Error(
        `function ${functionName}'s last update failed: ${config.LastUpdateStatusReason ?? 'no reason given'}`,
      );
    }
    if (config.State !== 'Pending' && config.LastUpdateStatus !== 'InProgress') return config;
    if (Date.now() > deadline) {
      throw new Error(`function ${functionName} was still updating after ${wait.timeoutMs ?? 300_000} ms`);
    }
    await sleep(wait.pollMs ?? 500);
  }
}

async function setEnvironment(
  lambda: LambdaClient,
  functionName: string,
  changes: Readonly<Record<string, string>>,
  wait: WaitOptions,
): Promise<FunctionConfiguration> {
  const current = await settled(lambda, functionName, wait);
  await lambda.send(
    new UpdateFunctionConfigurationCommand({
      FunctionName: functionName,
      Environment: { Variables: { ...(current.Environment?.Variables ?? {}), ...changes } },
      // Fails instead of overwriting if someone else changed the function since we read it.
      RevisionId: current.RevisionId,
    }),
  );
  return settled(lambda, functionName, wait);
}

export interface PublishedVariant {
  readonly version: string;
  readonly versionArn: string;
}

export async function publishVariantVersion(
  lambda: LambdaClient,
  request: VariantVersionRequest,
  wait: WaitOptions = {},
): Promise<PublishedVariant> {
  const { functionName } = request;
  try {
    const updated = await setEnvironment(lambda, functionName, request.variantEnvironment, wait);
    const published = await lambda.send(
      new PublishVersionCommand({
        FunctionName: functionName,
        Description: request.description,
        RevisionId: updated.RevisionId,
      }),
    );
    if (!published.Version || !published.FunctionArn) {
      throw new Error(`Lambda published no version of ${functionName}`);
    }
    const env = published.Environment?.Variables ?? {};
    const wrong = Object.entries(request.variantEnvironment).filter(([k, v]) => env[k] !== v);
    if (wrong.length > 0) {
      // Lambda hands back the last version when nothing changed; that one is not the variant's.
      throw new Error(
        `version ${published.Version} of ${functionName} does not have the variant's ${wrong.map(([k]) => k).join(', ')}`,
      );
    }
    return { version: published.Version, versionArn: published.FunctionArn };
  } finally {
    await setEnvironment(lambda, functionName, request.primaryEnvironment, wait);
  }
}

/**
 * Create and Update publish a new version (the physical id is its ARN, so an Update that publishes another
 * version replaces the resource). Delete does nothing: old versions stay, as CDK's own `currentVersion` ones
 * do, because an alias or a rollback may still point at one.
 */
export async function variantVersionEvent(
  lambda: LambdaClient,
  event: CustomResourceEvent,
  wait?: WaitOptions,
): Promise<CustomResourceOutcome> {
  if (event.RequestType === 'Delete') {
    return { physicalResourceId: event.PhysicalResourceId ?? event.LogicalResourceId };
  }
  const result = await publishVariantVersion(
    lambda,
    variantVersionRequestFrom(event.ResourceProperties),
    wait,
  );
  return {
    physicalResourceId: result.versionArn,
    data: { Version: result.version, VersionArn: result.versionArn },
  };
}
