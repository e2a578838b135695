// The reference model's fragment entries (assembly/flow/fragments.ts): the
// first fragment of a datagram leaves an entry keyed by (source, destination,
// protocol, identification) naming its flow, which later fragments follow;
// when the first fragment lacks its transport checksum field, the change it
// owes travels in the entry to the fragment that holds the field.

import type { Fallback } from "../checksum.js";
import { addrLen, dstOffset, hex, srcOffset, PROTO_TCP, PROTO_UDP, type Parsed } from "../parse.js";

/** Seconds a fragment entry lives (the core's FRAG_TIMEOUT). */
const FRAG_TIMEOUT = 30;

export interface FragEntry {
  /** The flow's record. */
  idx: number;
  reverse: boolean;
  /** The flow's forward hash: a recycled flow record does not match. */
  check: number;
  expire: number;
  /** The first fragment lacked its transport checksum: a later one owes `delta` at `csumOff`. */
  owed: boolean;
  csumOff: number;
  delta: Fallback | null;
}

/** The datagram a fragment belongs to, by its addresses as they are in the packet now. */
export function fragKey(b: Uint8Array, p: Parsed): string {
  const n = addrLen(p.family);
  const s = p.l3 + srcOffset(p.family);
  const d = p.l3 + dstOffset(p.family);
  return `${p.family}/${hex(b.slice(s, s + n))}/${hex(b.slice(d, d + n))}/${p.fragProto}/${p.fragId}`;
}

export class FragmentTable {
  /** Entries by fragKey(), in creation order. */
  private readonly frags = new Map<string, FragEntry>();

  constructor(private readonly cap: number) {}

  /**
   * The entry a first fragment leaves for its datagram (keyed by its original
   * addresses, read before the rewrite) toward flow `idx` with forward hash
   * `check`; undefined when the table is full. The core frees entries lazily
   * and, when full, evicts an expired one among 16 from a moving hand; here
   * the oldest expired entry goes (the two differ only with more than `cap`
   * datagrams in flight).
   */
  remember(b: Uint8Array, p: Parsed, idx: number, check: number, reverse: boolean, now: number): FragEntry | undefined {
    const key = fragKey(b, p);
    let e = this.find(key, now);
    if (!e) {
      if (this.frags.size >= this.cap) {
        const old = [...this.frags].find(([, x]) => ((now - x.expire) | 0) > 0);
        if (!old) return undefined;
        this.frags.delete(old[0]);
      }
      e = { idx, reverse, check, expire: 0, owed: false, csumOff: 0, delta: null };
      this.frags.set(key, e);
    }
    Object.assign(e, { idx, reverse, check, expire: (now + FRAG_TIMEOUT) >>> 0, owed: false });
    return e;
  }

  /** The live entry of `key` (an expired one is freed on the way). */
  find(key: string, now: number): FragEntry | undefined {
    const e = this.frags.get(key);
    if (e && ((now - e.expire) | 0) > 0) {
      this.frags.delete(key);
      return undefined;
    }
    return e;
  }
}

/** After rewriting a first fragment that lacks its transport checksum field: a later fragment owes the change. */
export function owe(e: FragEntry, p: Parsed, delta: Fallback | null): void {
  const field = p.proto === PROTO_TCP ? 16 : p.proto === PROTO_UDP ? 6 : 2;
  const at = p.l4 - p.fragPayload + field;
  const payloadLen = p.ipTotal - (p.fragPayload - p.l3);
  if (at + 2 > payloadLen && delta) Object.assign(e, { owed: true, csumOff: at, delta });
}

/** Apply what the first fragment owed, if this fragment holds the checksum field (FALLBACK: incremental). */
export function payOwed(e: FragEntry, b: Uint8Array, p: Parsed): void {
  if (!e.owed || !e.delta) return;
  const payloadLen = p.ipTotal - (p.fragPayload - p.l3);
  if (e.csumOff < p.fragOffset || e.csumOff + 2 > p.fragOffset + payloadLen) return;
  e.owed = false;
  const at = p.fragPayload + (e.csumOff - p.fragOffset);
  if (at + 2 > p.ipEnd) return; // cut by the capture
  e.delta.applyAt(b, at, p.fragProto === PROTO_UDP);
}
