// The overlay's NAT bindings (README "Reaching an overlay"): one 48-byte
// record per connection of a client through this node, reachable from both
// directions through a bucket index: the client side (the client's tunnel
// endpoint, its address and port, the remote host's address and port,
// protocol) and the Internet side (the remote host's reply to the TA:
// R:r -> A:p, protocol). The TA A:p comes from this node's own blocks of the
// partition, and (protocol, A, p, R, r) is unique among live bindings.
//
// Sized once at start; expiry is lazy plus a bounded sweep, as for the proxy's
// flows (flow/flows.ts): never a scan of the whole table on the packet path.

import { Limit, OverlayStat, Reason } from "../shared/abi";
import { raw16 } from "../wire/bytes";
import { PROTO_TCP, PROTO_UDP } from "../wire/ip";
import { TCP_ACK, TCP_FIN, TCP_RST, TCP_SYN } from "../wire/l4";
import { finalize, mix } from "../hash";
import {
  bucketAt, bucketsFor, homeBucket, indexInsert, indexRemove, nextBucket, overflowed, refAt, slotsOf, BUCKET_BYTES,
} from "../table/bucket-index";
import { reservePages } from "../memory";
import { timeoutIcmp, timeoutTcpEstablished, timeoutTcpTransitory, timeoutUdp } from "../settings";
import { blockAddress, blockFirstPort, blockSize, ownBlock, ownBlocks } from "./partition";
import { bumpStat, setStat } from "./stats";

const SEED_OVERLAY: u32 = 0x6f766c79; // "ovly"

// ---- binding record (48 bytes); addresses and ports raw ----
export const O_SIZE: usize = 48;
export const O_CIN: usize = 0; // u32 the client's own address (inside its tunnel)
export const O_COUT: usize = 4; // u32 the client's tunnel endpoint address
export const O_R: usize = 8; // u32 the remote host
export const O_A: usize = 12; // u32 the TA's address
export const O_CP: usize = 16; // u16 the client's port
export const O_COP: usize = 18; // u16 the client's tunnel endpoint port
export const O_RP: usize = 20; // u16 the remote host's port
export const O_AP: usize = 22; // u16 the TA's port
export const O_PROTO: usize = 24; // u8
export const O_FLAGS: usize = 25; // u8
export const O_LAST: usize = 28; // u32 seconds of the last packet
export const O_HFWD: usize = 32; // u32 hash of the client-side key
export const O_HREV: usize = 36; // u32 hash of the Internet-side key
export const O_NEXT: usize = 40; // u32 free-list link

const OF_USED: u32 = 1;
const OF_ESTABLISHED: u32 = 4;
const OF_FIN_FWD: u32 = 8;
const OF_FIN_REV: u32 = 16;
const OF_CLOSED: u32 = 32;

/** Direction bit of a reference: 0 client side, 1 Internet side. */
const DIR_REVERSE: u32 = 1;
const SWEEP_PER_PACKET: u32 = 4;
const EVICT_SCAN: u32 = 64;
/** TAs tried before giving up (at 90% of the node's TAs bound toward one R:r, 64 tries all fail once in 850). */
const TA_TRIES: u32 = 64;

let table: usize = 0;
let capacity: u32 = 0;
let hwm: u32 = 0;
let freeHead: i64 = -1;
let live: u32 = 0;
let hand: u32 = 0;
let index: usize = 0;
let indexBuckets: u32 = 0;

export function bindingsInit(maxFlows: u32): bool {
  if (maxFlows > <u32>Limit.FLOWS) return false;
  capacity = maxFlows;
  table = reservePages(<usize>maxFlows * O_SIZE);
  indexBuckets = bucketsFor(maxFlows * 2);
  index = reservePages(<usize>indexBuckets * BUCKET_BYTES);
  return table != 0 && index != 0;
}

@inline export function bindingPtr(idx: u32): usize {
  return table + <usize>idx * O_SIZE;
}

export function bindingsLive(): u32 {
  return live;
}

/** Bytes per binding: its record and its share of the index. */
export function bindingBytes(): f64 {
  return <f64>O_SIZE + <f64>(<u64>indexBuckets * BUCKET_BYTES) / <f64>capacity;
}

/** Hash of an IPv4 tuple a -> b from raw values (the same for a packet's fields and a record's). */
@inline function hash4(a: u32, b: u32, pa: u32, pb: u32, proto: u32): u32 {
  let h = mix(SEED_OVERLAY, a);
  h = mix(h, b);
  h = mix(h, (pa & 0xffff) | (pb << 16));
  return finalize(mix(h, proto), 16);
}

/** Hash of the client-side key: the inner tuple C:c -> R:r and the client's tunnel endpoint. */
export function forwardHash(cin: u32, cp: u32, r: u32, rp: u32, proto: u32, cout: u32, cop: u32): u32 {
  return finalize(mix(mix(hash4(cin, r, cp, rp, proto), cout), cop), 28);
}

/** Hash of the Internet-side key: R:r -> A:p. */
@inline export function reverseHash(r: u32, rp: u32, a: u32, ap: u32, proto: u32): u32 {
  return hash4(r, a, rp, ap, proto);
}

@inline function timeoutOf(rec: usize): u32 {
  let proto = <u32>load<u8>(rec + O_PROTO);
  if (proto == PROTO_TCP) {
    let f = <u32>load<u8>(rec + O_FLAGS);
    return (f & OF_ESTABLISHED) != 0 && (f & OF_CLOSED) == 0 ? timeoutTcpEstablished : timeoutTcpTransitory;
  }
  return proto == PROTO_UDP ? timeoutUdp : timeoutIcmp;
}

@inline export function bindingStale(rec: usize, now: u32): bool {
  return <i32>(now - load<u32>(rec + O_LAST)) > <i32>timeoutOf(rec);
}

/** The live binding of the client-side key, or -1 (a stale one is freed). */
export function findForward(h: u32, cin: u32, cp: u32, r: u32, rp: u32, proto: u32, cout: u32, cop: u32, now: u32): i64 {
  let nb = indexBuckets;
  let bi = homeBucket(h, nb);
  for (let steps: u32 = 0; steps < nb; steps++) {
    let b = bucketAt(index, bi);
    for (let m = slotsOf(b, h); m != 0; m &= m - 1) {
      let ref = refAt(b, ctz<u32>(m));
      if ((ref & DIR_REVERSE) != 0) continue;
      let rec = bindingPtr(ref >> 1);
      if (load<u32>(rec + O_CIN) != cin || load<u32>(rec + O_R) != r || raw16(rec + O_CP) != cp || raw16(rec + O_RP) != rp) continue;
      if (<u32>load<u8>(rec + O_PROTO) != proto || load<u32>(rec + O_COUT) != cout || raw16(rec + O_COP) != cop) continue;
      return live1(ref >> 1, now);
    }
    if (!overflowed(b)) break;
    bi = nextBucket(bi, nb);
  }
  return -1;
}

/** The live binding of the Internet-side key R:r -> A:p, or -1 (a stale one is freed). */
export function findReverse(r: u32, rp: u32, a: u32, ap: u32, proto: u32, now: u32): i64 {
  let h = reverseHash(r, rp, a, ap, proto);
  let nb = indexBuckets;
  let bi = homeBucket(h, nb);
  for (let steps: u32 = 0; steps < nb; steps++) {
    let b = bucketAt(index, bi);
    for (let m = slotsOf(b, h); m != 0; m &= m - 1) {
      let ref = refAt(b, ctz<u32>(m));
      if ((ref & DIR_REVERSE) == 0) continue;
      let rec = bindingPtr(ref >> 1);
      if (load<u32>(rec + O_A) != a || load<u32>(rec + O_R) != r || raw16(rec + O_AP) != ap || raw16(rec + O_RP) != rp) continue;
      if (<u32>load<u8>(rec + O_PROTO) != proto) continue;
      return live1(ref >> 1, now);
    }
    if (!overflowed(b)) break;
    bi = nextBucket(bi, nb);
  }
  return -1;
}

/** idx when its binding is live at `now`, else free it and -1. */
@inline function live1(idx: u32, now: u32): i64 {
  if (!bindingStale(bindingPtr(idx), now)) return <i64>idx;
  bindingFree(idx);
  return -1;
}

export function bindingFree(idx: u32): void {
  let rec = bindingPtr(idx);
  if ((<u32>load<u8>(rec + O_FLAGS) & OF_USED) == 0) return;
  indexRemove(index, indexBuckets, load<u32>(rec + O_HFWD), idx << 1);
  indexRemove(index, indexBuckets, load<u32>(rec + O_HREV), (idx << 1) | DIR_REVERSE);
  store<u8>(rec + O_FLAGS, 0);
  store<u32>(rec + O_NEXT, <u32>freeHead);
  freeHead = <i64>idx;
  live--;
  bumpStat(OverlayStat.FlowsExpired);
  setStat(OverlayStat.FlowsLive, live);
}

/** A free record: the free list, fresh records, then an expired or transitory victim. -1 when full. */
function takeRecord(now: u32): i64 {
  if (freeHead >= 0) {
    let idx = <u32>freeHead;
    freeHead = <i64>load<u32>(bindingPtr(idx) + O_NEXT);
    if (freeHead == 0xffffffff) freeHead = -1;
    return <i64>idx;
  }
  if (hwm < capacity) return <i64>(hwm++);
  let victim: i64 = -1;
  for (let i: u32 = 0; i < EVICT_SCAN; i++) {
    if (hand >= capacity) hand = 0;
    let idx = hand++;
    let rec = bindingPtr(idx);
    let f = <u32>load<u8>(rec + O_FLAGS);
    if ((f & OF_USED) == 0) continue;
    if (bindingStale(rec, now)) { victim = <i64>idx; break; }
    if (victim < 0 && <u32>load<u8>(rec + O_PROTO) == PROTO_TCP && ((f & OF_ESTABLISHED) == 0 || (f & OF_CLOSED) != 0)) victim = <i64>idx;
  }
  if (victim < 0) return -1;
  bindingFree(<u32>victim);
  return takeRecord(now);
}

/**
 * A TA of this node's own blocks for a connection to R:r, drawn from the
 * hash of its client-side key, such that no live binding holds (protocol, A,
 * p, R, r). Returns (A << 16 | p) with A raw and p host order, or -1.
 */
function allocTa(h: u32, r: u32, rp: u32, proto: u32, now: u32): i64 {
  let n = ownBlocks();
  if (n == 0) return -1;
  for (let i: u32 = 0; i < TA_TRIES; i++) {
    let x = finalize(mix(h, i), 4);
    let block = ownBlock(x % n);
    let port = blockFirstPort(block) + finalize(mix(x, 0x9e37), 4) % blockSize(block);
    let a = blockAddress(block);
    let ap = <u32>bswap<u16>(<u16>port);
    if (findReverse(r, rp, a, ap, proto, now) < 0) return (<i64>a << 16) | <i64>port;
  }
  return -1;
}

/**
 * A binding for the client's connection C:c -> R:r (raw values) from its
 * tunnel endpoint cout:cop, under the client-side hash `h`. Returns the record
 * index, or minus the Reason it could not be made for.
 */
export function bindingCreate(h: u32, cin: u32, cp: u32, r: u32, rp: u32, proto: u32, cout: u32, cop: u32, now: u32): i64 {
  let ta = allocTa(h, r, rp, proto, now);
  if (ta < 0) return -<i64>Reason.NatPortsExhausted;
  let got = takeRecord(now);
  if (got < 0) return -<i64>Reason.FlowTableFull;
  let idx = <u32>got;
  let rec = bindingPtr(idx);
  let a = <u32>(ta >> 16);
  let ap = <u32>bswap<u16>(<u16>(<u32>ta & 0xffff));
  memory.fill(rec, 0, O_SIZE);
  store<u32>(rec + O_CIN, cin);
  store<u32>(rec + O_COUT, cout);
  store<u32>(rec + O_R, r);
  store<u32>(rec + O_A, a);
  store<u16>(rec + O_CP, <u16>cp);
  store<u16>(rec + O_COP, <u16>cop);
  store<u16>(rec + O_RP, <u16>rp);
  store<u16>(rec + O_AP, <u16>ap);
  store<u8>(rec + O_PROTO, <u8>proto);
  store<u8>(rec + O_FLAGS, <u8>OF_USED);
  store<u32>(rec + O_LAST, now);
  let hrev = reverseHash(r, rp, a, ap, proto);
  store<u32>(rec + O_HFWD, h);
  store<u32>(rec + O_HREV, hrev);
  indexInsert(index, indexBuckets, h, idx << 1);
  indexInsert(index, indexBuckets, hrev, (idx << 1) | DIR_REVERSE);
  live++;
  bumpStat(OverlayStat.FlowsCreated);
  setStat(OverlayStat.FlowsLive, live);
  return <i64>idx;
}

/** A packet of the binding went through at `now`: TCP state for timeouts (RFC 5382), as the proxy's flows keep it. */
export function bindingTouch(rec: usize, tcpFlags: u32, fromClient: bool, now: u32): void {
  store<u32>(rec + O_LAST, now);
  if (<u32>load<u8>(rec + O_PROTO) != PROTO_TCP) return;
  let f = <u32>load<u8>(rec + O_FLAGS);
  if ((tcpFlags & TCP_RST) != 0) {
    f |= OF_CLOSED;
  } else if ((tcpFlags & TCP_SYN) != 0) {
    if (fromClient && (tcpFlags & TCP_ACK) == 0 && (f & OF_CLOSED) != 0) f &= ~(OF_CLOSED | OF_ESTABLISHED | OF_FIN_FWD | OF_FIN_REV);
  } else {
    if ((tcpFlags & TCP_FIN) != 0) f |= fromClient ? OF_FIN_FWD : OF_FIN_REV;
    if ((f & (OF_FIN_FWD | OF_FIN_REV)) == (OF_FIN_FWD | OF_FIN_REV)) f |= OF_CLOSED;
    f |= OF_ESTABLISHED;
  }
  store<u8>(rec + O_FLAGS, <u8>f);
}

/** Bounded expiry work, a few records per overlay packet. */
export function bindingsSweep(now: u32): void {
  let n = SWEEP_PER_PACKET;
  if (n > hwm) n = hwm;
  for (let i: u32 = 0; i < n; i++) {
    if (hand >= hwm) hand = 0;
    let rec = bindingPtr(hand);
    if ((<u32>load<u8>(rec + O_FLAGS) & OF_USED) != 0 && bindingStale(rec, now)) bindingFree(hand);
    hand++;
  }
}

/** Free every binding idle at `now` (a control-plane sweep, not for the packet path). */
export function bindingsExpireAll(now: u32): u32 {
  let freed: u32 = 0;
  for (let i: u32 = 0; i < hwm; i++) {
    let rec = bindingPtr(i);
    if ((<u32>load<u8>(rec + O_FLAGS) & OF_USED) != 0 && bindingStale(rec, now)) { bindingFree(i); freed++; }
  }
  return freed;
}
