import * as cdk from 'aws-cdk-lib';

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

/** Throws unless `d` is undefined or a whole number of days, at least 1 (an unresolved token passes). */
export function checkWholeDays(owner: string, prop: string, d: cdk.Duration | undefined): void {
  if (d === undefined) return;
  const days = d.toDays({ integral: false });
  if (!cdk.Token.isUnresolved(days) && (days < 1 || !Number.isInteger(days))) {
    throw new Error(`${owner}: ${prop} must be a whole number of days, at least 1, got ${d.toHumanString()}`);
  }
}
