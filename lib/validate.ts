/** Prop checks shared by the constructs; the message names the construct, the prop and the bad value. */

/** Throws unless `value` is undefined or an integer of at least 1 (or 0, with `allowZero`). */
export function checkPositiveInteger(
  owner: string,
  prop: string,
  value: number | undefined,
  allowZero = false,
): void {
  if (value === undefined) return;
  if (Number.isSafeInteger(value) && value >= (allowZero ? 0 : 1)) return;
  throw new Error(`${owner}: ${prop} must be ${allowZero ? '0 or ' : ''}a positive integer, got ${value}`);
}
