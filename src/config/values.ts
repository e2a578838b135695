// Building blocks of configuration validation: the one-line error that names
// the offending path, and checkers for values (objects with known keys only,
// integers in a range, addresses, hex keys, ...). Every section validator
// (src/config/validate.ts and the sections in their own files) uses these.

import { ConfigError, printable } from "../errors.js";
import { formatAddress, parseAddress, AddressError, type Family } from "../net/addr.js";

export type ConfigPath = readonly (string | number)[];

/** "groups[0].targets[1].address" */
export function formatConfigPath(path: ConfigPath): string {
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else out += out === "" ? seg : `.${seg}`;
  }
  return out;
}

/** Where the source (if any) holds the offending part, for a message with a line number. */
export interface ConfigSourceLocation {
  readonly file: string;
  readonly line?: number;
}

/**
 * A configuration value is invalid. The message is one line:
 * "PATH: DETAIL", or DETAIL alone for the top level, prefixed by
 * "FILE:LINE: " when the configuration came from a file.
 */
export class ConfigValidationError extends ConfigError {
  constructor(
    /** Path of the offending value ([] for the configuration as a whole). */
    readonly path: ConfigPath,
    /** What is wrong, without the path. */
    readonly detail: string,
    /** Path of the source text to point at (the offending key for an unknown key); defaults to `path`. */
    readonly locate: ConfigPath = path,
    readonly source?: ConfigSourceLocation,
  ) {
    const where = source ? (source.line !== undefined ? `${source.file}:${source.line}: ` : `${source.file}: `) : "";
    super(where + (path.length ? `${formatConfigPath(path)}: ${detail}` : detail));
  }

  /** The same error with a file name (and line) in front. */
  at(source: ConfigSourceLocation): ConfigValidationError {
    return new ConfigValidationError(this.path, this.detail, this.locate, source);
  }
}

export function fail(path: ConfigPath, detail: string, locate: ConfigPath = path): never {
  throw new ConfigValidationError(path, detail, locate);
}

export type Raw = Record<string, unknown>;

export function isPlainObject(v: unknown): v is Raw {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Quote a string for a one-line message. */
export function quote(s: string): string {
  return printable(JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s));
}

/** How a message shows a value it did not accept. */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (v === undefined) return "nothing";
  if (typeof v === "string") return `the string ${quote(v)}`;
  if (typeof v === "number" || typeof v === "boolean" || typeof v === "bigint") return String(v);
  if (Array.isArray(v)) return "a list";
  if (isPlainObject(v)) return "an object";
  const name = (v as object).constructor?.name;
  return name ? `a ${name}` : "an object";
}

/** Levenshtein distance, for "did you mean" hints on unknown keys. */
function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length];
}

function suggestion(key: string, allowed: readonly string[]): string {
  let best: string | undefined;
  let bestDist = Infinity;
  for (const k of allowed) {
    const d = editDistance(key.toLowerCase(), k.toLowerCase());
    if (d < bestDist) {
      best = k;
      bestDist = d;
    }
  }
  return best !== undefined && bestDist <= Math.max(1, Math.floor(best.length / 3)) ? ` (did you mean "${best}"?)` : "";
}

export function object(v: unknown, path: ConfigPath, allowed: readonly string[]): Raw {
  if (!isPlainObject(v)) {
    if (path.length === 0) fail(path, `the configuration must be an object, got ${describeValue(v)}`);
    fail(path, `must be an object with keys ${allowed.join(", ")}, got ${describeValue(v)}`);
  }
  for (const key of Object.keys(v)) {
    if (!allowed.includes(key)) {
      const hint = suggestion(key, allowed);
      if (path.length === 0) fail(path, `unknown key ${quote(key)} at top level${hint}`, [key]);
      fail(path, `unknown key ${quote(key)}${hint}`, [...path, key]);
    }
  }
  return v;
}

export function has(obj: Raw, key: string): boolean {
  return Object.prototype.hasOwnProperty.call(obj, key);
}

export function list(v: unknown, path: ConfigPath): unknown[] {
  if (!Array.isArray(v)) fail(path, `must be a list, got ${describeValue(v)}`);
  return v;
}

export function integer(v: unknown, path: ConfigPath, range: readonly [number, number]): number {
  const [min, max] = range;
  if (typeof v !== "number") fail(path, `must be an integer ${min}..${max}, got ${describeValue(v)}`);
  if (!Number.isInteger(v)) fail(path, `${String(v)} is not an integer`);
  if (v < min || v > max) fail(path, `${v} is not in ${min}..${max}`);
  return v === 0 ? 0 : v; // no -0
}

export function optInteger(obj: Raw, key: string, path: ConfigPath, range: readonly [number, number], def: number): number {
  return has(obj, key) ? integer(obj[key], [...path, key], range) : def;
}

export function optBoolean(obj: Raw, key: string, path: ConfigPath, def: boolean): boolean {
  if (!has(obj, key)) return def;
  const v = obj[key];
  if (typeof v !== "boolean") fail([...path, key], `must be true or false, got ${describeValue(v)}`);
  return v;
}

export function oneOf<T extends string>(v: unknown, path: ConfigPath, choices: readonly T[]): T {
  if (typeof v !== "string") fail(path, `must be one of ${choices.join(", ")}, got ${describeValue(v)}`);
  if (!(choices as readonly string[]).includes(v)) fail(path, `${quote(v)} is not one of ${choices.join(", ")}`);
  return v as T;
}

/** A name or label: a non-empty string that fits on one log line. */
export function text(v: unknown, path: ConfigPath): string {
  if (typeof v !== "string") fail(path, `must be a string, got ${describeValue(v)}`);
  if (v.trim() === "") fail(path, "must not be empty");
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(v)) fail(path, `${quote(v)} contains a control character`);
  if (v.length > 200) fail(path, `is ${v.length} characters long, at most 200 allowed`);
  return v;
}

export interface Address {
  readonly family: Family;
  readonly bytes: Uint8Array;
  readonly text: string;
}

/** Why an address cannot be a unicast host address, or undefined. */
function notUnicast(a: Address): string | undefined {
  const b = a.bytes;
  if (b.every((x) => x === 0)) return `${a.text} is the unspecified address`;
  if (a.family === 4) {
    if (b[0] >= 224 && b[0] <= 239) return `${a.text} is a multicast address`;
    if (b.every((x) => x === 255)) return `${a.text} is the broadcast address`;
  } else if (b[0] === 0xff) {
    return `${a.text} is a multicast address`;
  }
  return undefined;
}

/**
 * Addresses already accepted, by their text: a configuration names the same
 * targets in group after group (and a daemon reloads the same ones), so most
 * are checked once. Bounded: cleared when full.
 */
const accepted = new Map<string, Address>();
const ACCEPTED_MAX = 4096;

export function address(v: unknown, path: ConfigPath): Address {
  if (typeof v !== "string") fail(path, `must be an IPv4 or IPv6 address string, got ${describeValue(v)}`);
  const known = accepted.get(v);
  // a copy of the bytes: each configuration owns its own
  if (known) return { family: known.family, bytes: known.bytes.slice(), text: known.text };
  let parsed;
  try {
    parsed = parseAddress(v);
  } catch (err) {
    if (err instanceof AddressError) fail(path, err.message);
    throw err;
  }
  const a: Address = { family: parsed.family, bytes: parsed.bytes, text: formatAddress(parsed.bytes) };
  const problem = notUnicast(a);
  if (problem !== undefined) fail(path, `${problem}, not a unicast address`);
  if (accepted.size >= ACCEPTED_MAX) accepted.clear();
  accepted.set(v, { ...a, bytes: a.bytes.slice() });
  return a;
}

export const familyName = (f: Family): string => (f === 4 ? "IPv4" : "IPv6");

/** A secret key in hex: 16 to 64 bytes. */
export function hexKey(v: unknown, path: ConfigPath): Uint8Array {
  const t = text(v, path);
  if (!/^([0-9a-fA-F]{2}){16,64}$/.test(t)) fail(path, "must be 32 to 128 hex digits (16 to 64 bytes), e.g. from `openssl rand -hex 32`");
  return Uint8Array.from(Buffer.from(t, "hex"));
}
