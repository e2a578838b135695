// The Internet checksum computed from scratch (RFC 1071), in plain
// TypeScript: used by the host for the few packets it builds itself
// (src/net/packet.ts), and the independent yardstick the tests and the
// reference model check the Wasm core's incremental updates against. Slow on
// purpose: one byte pair at a time, no tricks; never on the hot path.

/** Ones' complement sum of `bytes` (big-endian 16-bit words, odd byte padded), not yet complemented. */
export function onesSum(bytes: Uint8Array, start = 0, end = bytes.length, initial = 0): number {
  let sum = initial;
  for (let i = start; i < end; i += 2) {
    sum += (bytes[i] << 8) | (i + 1 < end ? bytes[i + 1] : 0);
    sum = (sum & 0xffff) + (sum >>> 16);
  }
  return sum;
}

/** Checksum field value for a region (checksum field zeroed) whose sum is `sum`. */
export function complement(sum: number): number {
  return ~sum & 0xffff;
}

/** Pseudo-header sum for TCP/UDP/ICMPv6 over IPv4 or IPv6 (RFC 793, RFC 8200 section 8.1). */
export function pseudoHeaderSum(src: Uint8Array, dst: Uint8Array, proto: number, length: number): number {
  let sum = onesSum(src);
  sum = onesSum(dst, 0, dst.length, sum);
  if (src.length === 4) {
    sum += proto + length;
  } else {
    sum += (length >>> 16) + (length & 0xffff) + proto;
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** True when a region including its checksum field sums to 0xffff (or is all zero words). */
export function sumVerifies(sum: number): boolean {
  return sum === 0xffff;
}
