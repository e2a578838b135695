// IP address text <-> bytes, with no dependencies beyond the error base class.
//
// Parsing is strict on purpose: it reads addresses an operator typed into a
// proxy configuration, where "010.0.0.1" (octal? decimal?) or "fe80::1%eth0"
// (a zone that means nothing to a proxy) is a mistake to report, not to guess.
//
// - IPv4: exactly four decimal parts 0..255, no leading zeros ("0" itself is fine).
// - IPv6: every RFC 4291 section 2.2 text form: eight groups of 1-4 hex digits,
//   one "::" standing for one or more zero groups, and a dotted IPv4 address
//   (same strict rules) in place of the last two groups. No zone id ("%eth0"),
//   no brackets, no prefix length, no surrounding whitespace.
//
// Formatting follows RFC 5952: lowercase hex, no leading zeros, the longest run
// of two or more zero groups (the first such run on a tie) written as "::",
// and IPv4-mapped addresses (::ffff:0:0/96) written as "::ffff:192.0.2.1"
// (RFC 5952 section 5).

import { PiasError } from "../errors.js";

export type Family = 4 | 6;

export interface ParsedAddress {
  readonly family: Family;
  /** 4 bytes for IPv4, 16 for IPv6, network order. */
  readonly bytes: Uint8Array;
}

export interface Prefix {
  readonly family: Family;
  /** The network address, 4 or 16 bytes; every bit past `length` is zero. */
  readonly bytes: Uint8Array;
  /** Prefix length: 0..32 for IPv4, 0..128 for IPv6. */
  readonly length: number;
}

/** An address, prefix or endpoint text is not valid. `detail` says why, without the input. */
export class AddressError extends PiasError {
  constructor(
    message: string,
    readonly input: string,
    readonly detail: string,
  ) {
    super("EADDRESS", message);
  }
}

/** Quote untrusted text for a one-line message (escapes control characters, caps the length). */
function quote(text: string): string {
  const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
  return JSON.stringify(shown);
}

// ---------------------------------------------------------------- IPv4

const DECIMAL = /^(0|[1-9][0-9]{0,2})$/;

/** Why `text` is not a strict dotted quad, or undefined when it is one (then writes the bytes to out[at..at+3]). */
function readIPv4(text: string, out: Uint8Array, at: number): string | undefined {
  const parts = text.split(".");
  if (parts.length !== 4) return `expected 4 dot-separated decimal parts, found ${parts.length}`;
  for (let i = 0; i < 4; i++) {
    const part = parts[i];
    if (part === "") return `part ${i + 1} is empty`;
    if (/^0[0-9]/.test(part)) return `part ${i + 1} ${quote(part)} has a leading zero`;
    if (!DECIMAL.test(part)) return `part ${i + 1} ${quote(part)} is not a decimal number 0..255`;
    const value = Number(part);
    if (value > 255) return `part ${i + 1} (${value}) is greater than 255`;
    out[at + i] = value;
  }
  return undefined;
}

/** Parse a strict dotted-quad IPv4 address into 4 bytes. Throws AddressError. */
export function parseIPv4(text: string): Uint8Array {
  const bytes = new Uint8Array(4);
  const why = typeof text === "string" ? readIPv4(text, bytes, 0) : "not a string";
  if (why !== undefined) throw new AddressError(`${quote(String(text))} is not an IPv4 address: ${why}`, String(text), why);
  return bytes;
}

// ---------------------------------------------------------------- IPv6

const HEX_GROUP = /^[0-9A-Fa-f]{1,4}$/;

/**
 * Reads the colon-separated groups of one side of "::" into words.
 * `allowV4` lets the last part be a dotted quad (two words).
 */
function readGroups(side: string, allowV4: boolean, words: number[]): string | undefined {
  if (side === "") return undefined;
  const parts = side.split(":");
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i];
    if (part === "") return "empty group (a lone or misplaced \":\")";
    if (part.includes(".")) {
      if (!allowV4 || i !== parts.length - 1) return `embedded IPv4 address ${quote(part)} is only allowed as the last 32 bits`;
      const v4 = new Uint8Array(4);
      const why = readIPv4(part, v4, 0);
      if (why !== undefined) return `embedded IPv4 address ${quote(part)}: ${why}`;
      words.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      continue;
    }
    if (!HEX_GROUP.test(part)) {
      return /^[0-9A-Fa-f]+$/.test(part)
        ? `group ${quote(part)} has more than 4 hex digits`
        : `group ${quote(part)} is not 1-4 hex digits`;
    }
    words.push(parseInt(part, 16));
  }
  return undefined;
}

function readIPv6(text: string, out: Uint8Array): string | undefined {
  if (text === "") return "empty";
  if (text.includes("%")) return "zone ids (\"%...\") are not accepted";
  if (text.includes("/")) return "a prefix length is not accepted here";
  if (text.startsWith("[") || text.endsWith("]")) return "brackets are not accepted";
  if (/\s/.test(text)) return "contains whitespace";
  const halves = text.split("::");
  if (halves.length > 2) return "\"::\" may appear only once";
  const head: number[] = [];
  const tail: number[] = [];
  if (halves.length === 1) {
    const why = readGroups(text, true, head);
    if (why !== undefined) return why;
    if (head.length !== 8) return `expected 8 groups, found ${head.length}`;
  } else {
    let why = readGroups(halves[0], false, head);
    if (why !== undefined) return why;
    why = readGroups(halves[1], true, tail);
    if (why !== undefined) return why;
    if (head.length + tail.length > 7) return `"::" must stand for at least one zero group, but ${head.length + tail.length} groups are given`;
  }
  out.fill(0);
  head.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  const start = 8 - tail.length;
  tail.forEach((w, i) => {
    out[2 * (start + i)] = w >> 8;
    out[2 * (start + i) + 1] = w & 0xff;
  });
  return undefined;
}

/** Parse any RFC 4291 text form of an IPv6 address into 16 bytes. Throws AddressError. */
export function parseIPv6(text: string): Uint8Array {
  const bytes = new Uint8Array(16);
  const why = typeof text === "string" ? readIPv6(text, bytes) : "not a string";
  if (why !== undefined) throw new AddressError(`${quote(String(text))} is not an IPv6 address: ${why}`, String(text), why);
  return bytes;
}

// ---------------------------------------------------------------- either family

/** Parse an IPv4 or IPv6 address, or return undefined. */
export function tryParseAddress(text: string): ParsedAddress | undefined {
  if (typeof text !== "string") return undefined;
  if (text.includes(":")) {
    const bytes = new Uint8Array(16);
    return readIPv6(text, bytes) === undefined ? { family: 6, bytes } : undefined;
  }
  const bytes = new Uint8Array(4);
  return readIPv4(text, bytes, 0) === undefined ? { family: 4, bytes } : undefined;
}

/**
 * Parse an IPv4 or IPv6 address (a text containing ":" is read as IPv6).
 * Throws AddressError with the message `"TEXT" is not an IPv4 or IPv6 address`;
 * the error's `detail` says what is wrong.
 */
export function parseAddress(text: string): ParsedAddress {
  if (typeof text === "string") {
    const v6 = text.includes(":");
    const bytes = new Uint8Array(v6 ? 16 : 4);
    const why = v6 ? readIPv6(text, bytes) : readIPv4(text, bytes, 0);
    if (why === undefined) return { family: v6 ? 6 : 4, bytes };
    throw new AddressError(`${quote(text)} is not an IPv4 or IPv6 address`, text, why);
  }
  throw new AddressError(`${quote(String(text))} is not an IPv4 or IPv6 address`, String(text), "not a string");
}

/** The family of a 4- or 16-byte address. Throws AddressError for any other length. */
export function familyOf(bytes: Uint8Array): Family {
  if (bytes.length === 4) return 4;
  if (bytes.length === 16) return 6;
  throw new AddressError(`an address has 4 or 16 bytes, not ${bytes.length}`, "", `length ${bytes.length}`);
}

export function formatIPv4(bytes: Uint8Array): string {
  if (bytes.length !== 4) throw new AddressError(`an IPv4 address has 4 bytes, not ${bytes.length}`, "", `length ${bytes.length}`);
  return `${bytes[0]}.${bytes[1]}.${bytes[2]}.${bytes[3]}`;
}

/** RFC 5952 canonical text of a 16-byte IPv6 address. */
export function formatIPv6(bytes: Uint8Array): string {
  if (bytes.length !== 16) throw new AddressError(`an IPv6 address has 16 bytes, not ${bytes.length}`, "", `length ${bytes.length}`);
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[2 * i] << 8) | bytes[2 * i + 1]);

  // IPv4-mapped ::ffff:a.b.c.d (RFC 5952 section 5).
  if (words[0] === 0 && words[1] === 0 && words[2] === 0 && words[3] === 0 && words[4] === 0 && words[5] === 0xffff) {
    return `::ffff:${bytes[12]}.${bytes[13]}.${bytes[14]}.${bytes[15]}`;
  }

  // Longest run of zero words, at least 2 long; the first one on a tie.
  let bestStart = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (ws: number[]): string => ws.map((w) => w.toString(16)).join(":");
  if (bestStart < 0) return hex(words);
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`;
}

/** Canonical text of a 4-byte (dotted quad) or 16-byte (RFC 5952) address. */
export function formatAddress(bytes: Uint8Array): string {
  return familyOf(bytes) === 4 ? formatIPv4(bytes) : formatIPv6(bytes);
}

/** The canonical text of an address given as text (parse + format). Throws AddressError. */
export function canonicalAddress(text: string): string {
  return formatAddress(parseAddress(text).bytes);
}

export function addressesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

// ---------------------------------------------------------------- prefixes

/**
 * Parse "ADDRESS/LENGTH" (e.g. "10.1.0.0/16", "2001:db8::/32"). The length is
 * decimal without leading zeros, 0..32 or 0..128. Bits past the length must be
 * zero: "10.1.2.0/16" is rejected (naming "10.1.0.0/16") rather than silently
 * widened, since it usually means a mistyped length. Throws AddressError.
 */
export function parsePrefix(text: string): Prefix {
  const fail = (detail: string): never => {
    throw new AddressError(`${quote(String(text))} is not an IP prefix: ${detail}`, String(text), detail);
  };
  if (typeof text !== "string") return fail("not a string");
  const slash = text.indexOf("/");
  if (slash < 0) return fail("missing \"/length\" (write ADDRESS/32 or ADDRESS/128 for one address)");
  const addrText = text.slice(0, slash);
  const lenText = text.slice(slash + 1);
  let addr: ParsedAddress;
  try {
    addr = parseAddress(addrText);
  } catch (err) {
    return fail(`${(err as AddressError).message} (${(err as AddressError).detail})`);
  }
  const max = addr.family === 4 ? 32 : 128;
  if (!/^(0|[1-9][0-9]{0,2})$/.test(lenText) || Number(lenText) > max) {
    return fail(`length ${quote(lenText)} is not a decimal number 0..${max}`);
  }
  const length = Number(lenText);
  const network = maskBytes(addr.bytes, length);
  if (!addressesEqual(network, addr.bytes)) {
    return fail(`host bits are set past /${length} (did you mean ${formatAddress(network)}/${length}?)`);
  }
  return { family: addr.family, bytes: addr.bytes, length };
}

/** A copy of `bytes` with every bit past `length` cleared. */
export function maskBytes(bytes: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(bytes);
  for (let i = 0; i < out.length; i++) {
    const keep = Math.max(0, Math.min(8, length - 8 * i));
    out[i] &= keep === 0 ? 0 : (0xff << (8 - keep)) & 0xff;
  }
  return out;
}

export function formatPrefix(prefix: Prefix): string {
  return `${formatAddress(prefix.bytes)}/${prefix.length}`;
}

/** True when `bytes` (same family as the prefix) lies inside `prefix`. */
export function prefixContains(prefix: Prefix, bytes: Uint8Array): boolean {
  if (bytes.length !== prefix.bytes.length) return false;
  return addressesEqual(maskBytes(bytes, prefix.length), prefix.bytes);
}

// ---------------------------------------------------------------- endpoints

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new AddressError(`port ${String(port)} is not an integer 0..65535`, String(port), "bad port");
  }
}

/**
 * The text key of an endpoint, as the replay JSON names targets:
 * "192.0.2.11:8080" for IPv4, "[2001:db8::1]:8080" for IPv6.
 */
export function endpointKey(bytes: Uint8Array, port: number): string {
  checkPort(port);
  const text = formatAddress(bytes);
  return bytes.length === 4 ? `${text}:${port}` : `[${text}]:${port}`;
}

/** Inverse of endpointKey: "192.0.2.11:8080" / "[2001:db8::1]:8080". Throws AddressError. */
export function parseEndpoint(text: string): ParsedAddress & { readonly port: number } {
  const fail = (detail: string): never => {
    throw new AddressError(`${quote(String(text))} is not an endpoint ADDRESS:PORT: ${detail}`, String(text), detail);
  };
  if (typeof text !== "string") return fail("not a string");
  let addrText: string;
  let portText: string;
  if (text.startsWith("[")) {
    const close = text.indexOf("]");
    if (close < 0 || text[close + 1] !== ":") return fail("expected [IPv6]:PORT");
    addrText = text.slice(1, close);
    portText = text.slice(close + 2);
    if (!addrText.includes(":")) return fail("brackets are only for IPv6 addresses");
  } else {
    const colon = text.lastIndexOf(":");
    if (colon < 0) return fail("missing \":PORT\"");
    addrText = text.slice(0, colon);
    portText = text.slice(colon + 1);
    if (addrText.includes(":")) return fail("an IPv6 endpoint is written [ADDRESS]:PORT");
  }
  const addr = tryParseAddress(addrText);
  if (addr === undefined) return fail(`${quote(addrText)} is not an IPv4 or IPv6 address`);
  if (!/^(0|[1-9][0-9]{0,4})$/.test(portText) || Number(portText) > 65535) return fail(`port ${quote(portText)} is not 0..65535`);
  return { family: addr.family, bytes: addr.bytes, port: Number(portText) };
}
