import { runtimeConfigFromEnv } from '../../../lambda/core/runtime-config';

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
