import {
  CONTAINER_MODEL_DIR,
  runtimeConfigFromEnv,
  serverConfigFromEnv,
} from '../../../lambda/core/runtime-config';

describe('runtimeConfigFromEnv', () => {
  it('reads the model and limits, falling back to the given defaults', () => {
    const sha = 'ab'.repeat(32);
    expect(
      runtimeConfigFromEnv(
        {
          MODEL_URI: 's3://b/iris/1.0.0/',
          MODEL_NAME: 'iris',
          MODEL_SHA256: sha,
          MAX_BATCH: '64',
          ORT_INTRA_OP_THREADS: '2',
        },
        { maxPayloadBytes: 6_000_000 },
      ),
    ).toEqual({
      modelUri: 's3://b/iris/1.0.0/',
      modelName: 'iris',
      modelSha256: sha,
      limits: { maxPayloadBytes: 6_000_000, maxBatch: 64, maxElements: undefined },
      logPayloads: false,
      intraOpNumThreads: 2,
    });
  });

  it('turns spinning worker threads off only when told, and names a bad value', () => {
    expect(runtimeConfigFromEnv({ MODEL_URI: 'm' }).allowSpinning).toBeUndefined();
    expect(runtimeConfigFromEnv({ MODEL_URI: 'm', ORT_ALLOW_SPINNING: 'false' }).allowSpinning).toBe(false);
    expect(runtimeConfigFromEnv({ MODEL_URI: 'm', ORT_ALLOW_SPINNING: 'true' }).allowSpinning).toBe(true);
    expect(() => runtimeConfigFromEnv({ MODEL_URI: 'm', ORT_ALLOW_SPINNING: 'no' })).toThrow(
      /ORT_ALLOW_SPINNING must be true or false, got "no"/,
    );
  });

  it('only logs payloads when asked', () => {
    expect(runtimeConfigFromEnv({ MODEL_URI: 'm', LOG_PAYLOADS: 'true' }).logPayloads).toBe(true);
    expect(runtimeConfigFromEnv({ MODEL_URI: 'm', LOG_PAYLOADS: 'yes' }).logPayloads).toBe(false);
  });

  it('names the bad variable', () => {
    expect(() => runtimeConfigFromEnv({})).toThrow(/MODEL_URI is not set/);
    expect(() => runtimeConfigFromEnv({ MODEL_URI: 'm', MAX_BATCH: '0' })).toThrow(
      /MAX_BATCH must be a positive integer, got "0"/,
    );
    expect(() => runtimeConfigFromEnv({ MODEL_URI: 'm', MAX_PAYLOAD_BYTES: '1.5' })).toThrow(
      /MAX_PAYLOAD_BYTES/,
    );
    expect(() => runtimeConfigFromEnv({ MODEL_URI: 'm', MODEL_SHA256: 'xyz' })).toThrow(
      /MODEL_SHA256 must be 64 hex characters/,
    );
  });
});

describe('A/B variants from the environment', () => {
  const sha = 'cd'.repeat(32);
  const variants = JSON.stringify({
    primary: { uri: 's3://b/iris/1.0.0/', sha256: sha },
    challenger: { uri: 's3://b/iris/1.1.0/' },
  });

  it('reads MODEL_VARIANT and MODEL_VARIANTS, and has none without them', () => {
    expect(
      runtimeConfigFromEnv({
        MODEL_URI: 's3://b/iris/1.1.0/',
        MODEL_VARIANT: 'challenger',
        MODEL_VARIANTS: variants,
      }).variants,
    ).toEqual({
      own: 'challenger',
      models: {
        primary: { uri: 's3://b/iris/1.0.0/', sha256: sha },
        challenger: { uri: 's3://b/iris/1.1.0/' },
      },
    });
    expect(runtimeConfigFromEnv({ MODEL_URI: '/m' }).variants).toBeUndefined();
  });

  it.each([
    [{ MODEL_VARIANT: 'primary' }, /MODEL_VARIANT and MODEL_VARIANTS must be set together/],
    [{ MODEL_VARIANTS: variants }, /MODEL_VARIANT and MODEL_VARIANTS must be set together/],
    [{ MODEL_VARIANT: 'primary', MODEL_VARIANTS: '{"primary":' }, /MODEL_VARIANTS is not valid JSON/],
    [{ MODEL_VARIANT: 'primary', MODEL_VARIANTS: '["primary"]' }, /must be a JSON object/],
    [
      { MODEL_VARIANT: 'b', MODEL_VARIANTS: variants },
      /MODEL_VARIANT "b" is not in MODEL_VARIANTS \(primary, challenger\)/,
    ],
    [{ MODEL_VARIANT: 'a b', MODEL_VARIANTS: '{"a b":{"uri":"/m"}}' }, /variant name "a b" must match/],
    [{ MODEL_VARIANT: 'a', MODEL_VARIANTS: '{"a":{}}' }, /MODEL_VARIANTS.a.uri must be a non-empty string/],
    [
      { MODEL_VARIANT: 'a', MODEL_VARIANTS: '{"a":{"uri":"/m","sha256":"x"}}' },
      /MODEL_VARIANTS.a.sha256 must be 64 hex/,
    ],
  ])('names what is wrong: %j', (env, message) => {
    expect(() => runtimeConfigFromEnv({ MODEL_URI: '/m', ...env })).toThrow(message);
  });
});

describe('serverConfigFromEnv', () => {
  it('has container defaults: the SageMaker model folder, port 8080 on every interface, batching off', () => {
    expect(serverConfigFromEnv({})).toMatchObject({
      modelUri: CONTAINER_MODEL_DIR,
      port: 8080,
      host: '0.0.0.0',
      batching: undefined,
      maxInFlight: 256,
      drainTimeoutMs: 25_000,
      pathPrefix: undefined,
      logLevel: 'INFO',
      logPayloads: false,
    });
    expect(CONTAINER_MODEL_DIR).toBe('/opt/ml/model');
  });

  it('reads batching, the queue bound, drain time, prefix and log level', () => {
    expect(
      serverConfigFromEnv({
        MODEL_URI: 's3://b/m/1/',
        PORT: '9000',
        HOST: '127.0.0.1',
        BATCH_MAX_SIZE: '32',
        BATCH_MAX_LATENCY_MS: '5',
        MAX_QUEUE: '64',
        DRAIN_TIMEOUT_MS: '0',
        PATH_PREFIX: '/prod',
        LOG_LEVEL: 'debug',
      }),
    ).toMatchObject({
      modelUri: 's3://b/m/1/',
      port: 9000,
      host: '127.0.0.1',
      batching: { maxBatchSize: 32, maxLatencyMs: 5 },
      maxInFlight: 64,
      drainTimeoutMs: 0,
      pathPrefix: '/prod',
      logLevel: 'DEBUG',
    });
    expect(serverConfigFromEnv({ BATCH_MAX_SIZE: '1' }).batching).toBeUndefined();
    expect(serverConfigFromEnv({ BATCH_MAX_SIZE: '8' }).batching).toEqual({
      maxBatchSize: 8,
      maxLatencyMs: 0,
    });
  });

  it('names the bad variable and what to set instead', () => {
    expect(() => serverConfigFromEnv({ PORT: '70000' })).toThrow(/PORT must be at most 65535, got 70000/);
    expect(() => serverConfigFromEnv({ PORT: 'http' })).toThrow(
      /PORT must be 0 or a positive integer, got "http"/,
    );
    expect(() => serverConfigFromEnv({ MAX_QUEUE: '0' })).toThrow(
      /MAX_QUEUE must be a positive integer, got "0"/,
    );
    expect(() => serverConfigFromEnv({ BATCH_MAX_SIZE: '-2' })).toThrow(
      /BATCH_MAX_SIZE must be 0 or a positive/,
    );
    expect(() => serverConfigFromEnv({ BATCH_MAX_SIZE: '8', BATCH_MAX_LATENCY_MS: '90000' })).toThrow(
      /BATCH_MAX_LATENCY_MS must be at most 60000, got 90000/,
    );
    expect(() => serverConfigFromEnv({ BATCH_MAX_LATENCY_MS: '5' })).toThrow(
      /batching is off: set BATCH_MAX_SIZE to 2 or more/,
    );
    expect(() => serverConfigFromEnv({ LOG_LEVEL: 'loud' })).toThrow(
      /LOG_LEVEL must be one of DEBUG, INFO, WARN, ERROR, got "loud"/,
    );
    expect(() => serverConfigFromEnv({ MODEL_SHA256: 'nope' })).toThrow(/MODEL_SHA256 must be 64 hex/);
  });
});

describe('data capture from the environment', () => {
  const base = { MODEL_URI: '/opt/ml/model' };

  it('is off unless CAPTURE_PERCENT is above 0', () => {
    expect(runtimeConfigFromEnv(base).capture).toBeUndefined();
    expect(runtimeConfigFromEnv({ ...base, CAPTURE_PERCENT: '0' }).capture).toBeUndefined();
    expect(runtimeConfigFromEnv({ ...base, CAPTURE_PERCENT: '' }).capture).toBeUndefined();
  });

  it('reads the percentage, the redact and hash names and the row limit', () => {
    expect(runtimeConfigFromEnv({ ...base, CAPTURE_PERCENT: '2.5' }).capture).toEqual({
      percent: 2.5,
      redact: [],
      hash: [],
      maxRows: 1000,
    });
    expect(
      serverConfigFromEnv({
        CAPTURE_PERCENT: '100',
        CAPTURE_REDACT: 'ssn, email',
        CAPTURE_HASH: 'customer_id',
        CAPTURE_MAX_ROWS: '50',
      }).capture,
    ).toEqual({ percent: 100, redact: ['ssn', 'email'], hash: ['customer_id'], maxRows: 50 });
  });

  it('names the bad variable', () => {
    for (const bad of ['101', '-1', 'ten', ' 5', '1e2']) {
      expect(() => runtimeConfigFromEnv({ ...base, CAPTURE_PERCENT: bad })).toThrow(
        `CAPTURE_PERCENT must be a number from 0 to 100, got ${JSON.stringify(bad)}`,
      );
    }
    expect(() => runtimeConfigFromEnv({ ...base, CAPTURE_PERCENT: '5', CAPTURE_REDACT: 'a,,b' })).toThrow(
      'CAPTURE_REDACT has an empty name: "a,,b"',
    );
    expect(() =>
      runtimeConfigFromEnv({ ...base, CAPTURE_PERCENT: '5', CAPTURE_REDACT: 'a', CAPTURE_HASH: 'a' }),
    ).toThrow("'a' is both redacted and hashed");
    expect(() => runtimeConfigFromEnv({ ...base, CAPTURE_PERCENT: '5', CAPTURE_MAX_ROWS: '0' })).toThrow(
      'CAPTURE_MAX_ROWS must be a positive integer, got "0"',
    );
  });
});
