/** Publishing an A/B variant's Lambda version against moto's Lambda: the version has the variant's settings, $LATEST the primary's. */
import {
  GetFunctionConfigurationCommand,
  LambdaClient,
  ListVersionsByFunctionCommand,
} from '@aws-sdk/client-lambda';
import type { CustomResourceEvent } from '../../../lambda/core/custom-resource';
import {
  publishVariantVersion,
  variantVersionEvent,
  variantVersionRequestFrom,
} from '../../../lambda/core/variant-version';
import {
  createMotoFunction,
  motoClientConfig,
  motoLambdaRole,
  startMoto,
  type MotoServer,
} from '../../support/moto';

const PRIMARY = {
  MODEL_URI: 's3://models/iris/1.0.0/',
  MODEL_SHA256: 'a'.repeat(64),
  MODEL_VARIANT: 'primary',
};
const CHALLENGER = {
  MODEL_URI: 's3://models/iris/1.1.0/',
  MODEL_SHA256: 'b'.repeat(64),
  MODEL_VARIANT: 'challenger',
};
const SHARED = { MODEL_VARIANTS: '{"primary":{},"challenger":{}}', POWERTOOLS_LOG_LEVEL: 'INFO' };

let moto: MotoServer;
let lambda: LambdaClient;
let roleArn: string;

function createFunction(name: string): Promise<void> {
  return createMotoFunction(lambda, {
    name,
    roleArn,
    files: { 'index.mjs': 'export const handler = async () => 1;' },
    environment: { ...SHARED, ...PRIMARY },
  });
}

const envOf = async (name: string, qualifier?: string) =>
  (await lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name, Qualifier: qualifier })))
    .Environment?.Variables;

function event(type: CustomResourceEvent['RequestType'], functionName: string): CustomResourceEvent {
  return {
    RequestType: type,
    ResponseURL: 'http://127.0.0.1/unused',
    StackId: 'arn:aws:cloudformation:us-east-1:123456789012:stack/s/1',
    RequestId: 'r1',
    LogicalResourceId: 'ChallengerVersion',
    ...(type === 'Create'
      ? {}
      : { PhysicalResourceId: `arn:aws:lambda:us-east-1:123456789012:function:${functionName}:1` }),
    ResourceProperties: {
      FunctionName: functionName,
      VariantEnvironment: CHALLENGER,
      PrimaryEnvironment: PRIMARY,
      Description: 'iris 1.1.0 (challenger)',
    },
  };
}

beforeAll(async () => {
  moto = await startMoto();
  lambda = new LambdaClient(motoClientConfig(moto.endpoint));
  roleArn = await motoLambdaRole(moto.endpoint);
});

afterAll(async () => {
  lambda?.destroy();
  await moto?.stop();
});

describe('publishVariantVersion (moto Lambda)', () => {
  it("publishes a version with the variant's settings and leaves $LATEST as the primary's", async () => {
    await createFunction('fn-a');
    const out = await variantVersionEvent(lambda, event('Create', 'fn-a'), { pollMs: 10 });
    expect(out.data?.Version).toBe('1');
    expect(out.physicalResourceId).toBe(out.data?.VersionArn);
    expect(out.data?.VersionArn).toMatch(/:function:fn-a:1$/);
    expect(await envOf('fn-a', '1')).toEqual({ ...SHARED, ...CHALLENGER });
    expect(await envOf('fn-a')).toEqual({ ...SHARED, ...PRIMARY });
    const versions = await lambda.send(new ListVersionsByFunctionCommand({ FunctionName: 'fn-a' }));
    expect(versions.Versions?.find((v) => v.Version === '1')?.Description).toBe('iris 1.1.0 (challenger)');
  });

  it('puts the primary values back even if $LATEST was left with the variant settings', async () => {
    await createFunction('fn-b');
    // As if an earlier run had died between its two updates.
    await publishVariantVersion(
      lambda,
      {
        ...variantVersionRequestFrom(event('Create', 'fn-b').ResourceProperties),
        primaryEnvironment: CHALLENGER,
      },
      { pollMs: 10 },
    );
    expect((await envOf('fn-b'))?.MODEL_VARIANT).toBe('challenger');
    const out = await variantVersionEvent(lambda, event('Update', 'fn-b'), { pollMs: 10 });
    expect(out.data?.Version).toBe('2');
    expect(await envOf('fn-b')).toEqual({ ...SHARED, ...PRIMARY });
    expect((await envOf('fn-b', '2'))?.MODEL_VARIANT).toBe('challenger');
  });

  it('fails with the reason for a function that does not exist, and Delete touches nothing', async () => {
    await expect(variantVersionEvent(lambda, event('Create', 'missing'), { pollMs: 10 })).rejects.toThrow(
      /missing/,
    );
    await expect(variantVersionEvent(lambda, event('Delete', 'missing'))).resolves.toEqual({
      physicalResourceId: 'arn:aws:lambda:us-east-1:123456789012:function:missing:1',
    });
  });
});

describe('variantVersionRequestFrom', () => {
  it.each([
    [{}, /FunctionName must be a non-empty string/],
    [
      { FunctionName: 'f', VariantEnvironment: 'x', PrimaryEnvironment: {} },
      /VariantEnvironment must be an object/,
    ],
    [
      { FunctionName: 'f', VariantEnvironment: { A: 1 }, PrimaryEnvironment: { A: '1' } },
      /VariantEnvironment.A must be a string/,
    ],
    [
      { FunctionName: 'f', VariantEnvironment: { A: '1' }, PrimaryEnvironment: { B: '1' } },
      /the same, non-empty set/,
    ],
    [{ FunctionName: 'f', VariantEnvironment: {}, PrimaryEnvironment: {} }, /the same, non-empty set/],
  ])('names what is wrong: %j', (props, message) => {
    expect(() => variantVersionRequestFrom(props)).toThrow(message);
  });
});
