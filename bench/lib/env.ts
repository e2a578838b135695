// Numeric settings of the simulations from the environment.

/** The environment variable `name` as a non-negative number, `fallback` when unset or empty; throws on anything else. */
export function env(name: string, fallback: number): number {
  const v = process.env[name];
  if (v === undefined || v === "") return fallback;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, not ${v}`);
  return n;
}
