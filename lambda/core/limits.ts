export interface Limits {
  /** Largest request body, in bytes, before decoding. @default 10 MiB (6 MiB in Lambda) */
  readonly maxPayloadBytes: number;
  /** Largest first dimension of an input whose batch dimension is dynamic. @default 1024 */
  readonly maxBatch: number;
  /** Most elements in one input tensor, whatever its shape. @default 16,777,216 */
  readonly maxElements: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxPayloadBytes: 10 * 1024 * 1024,
  maxBatch: 1024,
  maxElements: 16 * 1024 * 1024,
};

export function resolveLimits(overrides?: Partial<Limits>): Limits {
  const limits = { ...DEFAULT_LIMITS, ...definedOnly(overrides ?? {}) };
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0) {
      throw new Error(`limit ${key} must be a positive integer, got ${String(value)}`);
    }
  }
  return limits;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
