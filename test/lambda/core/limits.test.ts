import { DEFAULT_LIMITS, resolveLimits } from '../../../lambda/core/limits';

describe('resolveLimits', () => {
  it('gives the documented defaults', () => {
    expect(resolveLimits()).toEqual({
      maxPayloadBytes: 10 * 1024 * 1024,
      maxBatch: 1024,
      maxElements: 16 * 1024 * 1024,
    });
    expect(resolveLimits({})).toEqual(DEFAULT_LIMITS);
  });

  it('overrides what is given and ignores undefined', () => {
    expect(resolveLimits({ maxBatch: 8, maxPayloadBytes: undefined })).toEqual({
      ...DEFAULT_LIMITS,
      maxBatch: 8,
    });
    expect(resolveLimits({ maxPayloadBytes: 6 * 1024 * 1024, maxElements: 1 })).toEqual({
      maxPayloadBytes: 6 * 1024 * 1024,
      maxBatch: 1024,
      maxElements: 1,
    });
  });

  it.each([
    ['maxBatch', 0],
    ['maxBatch', -1],
    ['maxPayloadBytes', 1.5],
    ['maxElements', NaN],
    ['maxElements', Infinity],
    ['maxPayloadBytes', 2 ** 53],
  ] as const)('rejects %s = %p, naming the limit', (key, value) => {
    expect(() => resolveLimits({ [key]: value })).toThrow(
      `limit ${key} must be a positive integer, got ${String(value)}`,
    );
  });

  it('rejects a value of the wrong type', () => {
    expect(() => resolveLimits({ maxBatch: '10' as unknown as number })).toThrow(
      'limit maxBatch must be a positive integer, got 10',
    );
  });

  it('does not change the defaults', () => {
    resolveLimits({ maxBatch: 1 });
    expect(DEFAULT_LIMITS.maxBatch).toBe(1024);
  });
});
