/** The error a call throws; fails the test when it throws nothing, or something that is not an Error. */
export function errorOf(fn: () => unknown): Error {
  try {
    fn();
  } catch (err) {
    if (err instanceof Error) return err;
    throw new Error(`threw a non-Error: ${String(err)}`);
  }
  throw new Error('expected an error, but none was thrown');
}
