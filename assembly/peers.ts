// What the proxy knows of the PIAS system around it, for the data path:
// the other proxies (IP-in-IP is only accepted from them), the anycast
// prefixes all proxies announce (a packet to an unknown TA there goes to the
// host, which asks the group's rendezvous proxy), and the control port.
// Set by control calls; the packet path only reads, except for the budget of
// packets handed to the host to resolve: at most `unresolvedPerSecond` a
// second (by the packets' clock), so a flood to random addresses of the
// prefixes costs the host a bounded amount of work whatever its rate. No
// allocation.

import { raw32 } from "./wire/bytes";
import { hashAddr, SEED_GROUP } from "./hash";
import { scratch } from "./settings";

const PEER_SLOTS: u32 = 8192; // open addressing, at most half full
const MAX_PEERS: u32 = 4096;
const PEER_SIZE: usize = 20; // 16 bytes address, u8 family (0 = empty)
const peers = memory.data(<i32>(<usize>PEER_SLOTS * PEER_SIZE), 16);
let peerCount: u32 = 0;

const MAX_PREFIXES: u32 = 64;
const PREFIX_SIZE: usize = 20; // 16 bytes address, u8 family, u8 length
const prefixes = memory.data(<i32>(<usize>MAX_PREFIXES * PREFIX_SIZE), 16);
let prefixCount: u32 = 0;

export let controlPortRaw: u32 = 0;

@inline function sameAddr(family: u32, a: usize, b: usize): bool {
  if (family == 4) return raw32(a) == raw32(b);
  return load<u64>(a) == load<u64>(b) && load<u64>(a + 8) == load<u64>(b + 8);
}

/** True when peers are configured: then only they may tunnel to this proxy. */
@inline export function peersKnown(): bool {
  return peerCount != 0;
}

export function isPeer(family: u32, addr: usize): bool {
  let i = hashAddr(SEED_GROUP, addr, family) & (PEER_SLOTS - 1);
  for (let k: u32 = 0; k < PEER_SLOTS; k++) {
    let e = peers + <usize>i * PEER_SIZE;
    let f = <u32>load<u8>(e + 16);
    if (f == 0) return false;
    if (f == family && sameAddr(family, e, addr)) return true;
    i = (i + 1) & (PEER_SLOTS - 1);
  }
  return false;
}

/** Exported: forget every peer. */
export function peers_clear(): void {
  memory.fill(peers, 0, <usize>PEER_SLOTS * PEER_SIZE);
  peerCount = 0;
}

/** Exported: add the proxy whose address is in the scratch area. 0, or -1 when full. */
export function peer_add(family: u32): i32 {
  if (isPeer(family, scratch)) return 0;
  if (peerCount >= MAX_PEERS) return -1;
  let i = hashAddr(SEED_GROUP, scratch, family) & (PEER_SLOTS - 1);
  while (load<u8>(peers + <usize>i * PEER_SIZE + 16) != 0) i = (i + 1) & (PEER_SLOTS - 1);
  let e = peers + <usize>i * PEER_SIZE;
  memory.fill(e, 0, 16);
  memory.copy(e, scratch, family == 4 ? 4 : 16);
  store<u8>(e + 16, <u8>family);
  peerCount++;
  return 0;
}

/** True when `addr` lies in one of the anycast prefixes. */
export function inAnycastPrefix(family: u32, addr: usize): bool {
  for (let i: u32 = 0; i < prefixCount; i++) {
    let e = prefixes + <usize>i * PREFIX_SIZE;
    if (<u32>load<u8>(e + 16) != family) continue;
    let bits = <u32>load<u8>(e + 17);
    let k: u32 = 0;
    for (; k + 8 <= bits; k += 8) if (load<u8>(addr + (k >> 3)) != load<u8>(e + (k >> 3))) break;
    if (k + 8 <= bits) continue;
    let rest = bits - k;
    if (rest == 0) return true;
    let mask = <u32>(0xff00 >> rest) & 0xff;
    if ((<u32>load<u8>(addr + (k >> 3)) & mask) == (<u32>load<u8>(e + (k >> 3)) & mask)) return true;
  }
  return false;
}

/** Exported: forget the anycast prefixes. */
export function prefixes_clear(): void {
  prefixCount = 0;
}

/** Exported: add the anycast prefix whose address is in the scratch area. 0, or -1 when full or invalid. */
export function prefix_add(family: u32, length: u32): i32 {
  if (prefixCount >= MAX_PREFIXES || length > (family == 4 ? 32 : 128)) return -1;
  let e = prefixes + <usize>prefixCount * PREFIX_SIZE;
  memory.fill(e, 0, PREFIX_SIZE);
  memory.copy(e, scratch, family == 4 ? 4 : 16);
  store<u8>(e + 16, <u8>family);
  store<u8>(e + 17, <u8>length);
  prefixCount++;
  return 0;
}

/** Exported: UDP to this port of an anycast or proxy address is a control message for the host (0: none). */
export function set_control_port(port: u32): void {
  controlPortRaw = <u32>bswap<u16>(<u16>port);
}

/** A packet to an anycast-prefix address with no group goes to the host to resolve (else it is dropped as no-group). */
export let unresolvedToHost: bool = true;
let unresolvedPerSecond: u32 = 1000;
let budgetSecond: u32 = 0;
let budgetLeft: u32 = 1000;

/** Exported: whether unknown TAs of the prefixes go to the host (a resolver is there) or are dropped as no-group. */
export function set_unresolved_to_host(on: bool): void {
  unresolvedToHost = on;
}

/** Exported: packets handed to the host to resolve per second at most (0: none). */
export function set_unresolved_per_second(n: u32): void {
  unresolvedPerSecond = n;
  budgetLeft = n;
}

/** Take one packet of this second's budget for the host (`now`: the packet's seconds); false when it is spent. */
export function takeUnresolved(now: u32): bool {
  if (now != budgetSecond) {
    budgetSecond = now;
    budgetLeft = unresolvedPerSecond;
  }
  if (budgetLeft == 0) return false;
  budgetLeft--;
  return true;
}
