// A pass over a batch before it is processed: for the common packet shapes
// (IPv4 or IPv6 TCP/UDP on Ethernet or raw IP), find the flow-index bucket
// each packet will look up and touch them all back to back, then the records
// they name. The cache misses of a whole batch then overlap instead of
// stalling one packet at a time. Reads only; changes nothing; any packet it
// does not recognise is simply left to the pipeline.

import { Desc, Layout } from "../shared/abi";
import { ld16, ld8, raw16 } from "../wire/bytes";
import { hashTuple, SEED_FLOW } from "../hash";
import { bucketAddress, firstCandidate } from "../table/bucket-index";
import { flowIndexBase, flowIndexBuckets, flowPtr } from "./flows";

const MAX_BATCH: u32 = 4096;
const buckets = memory.data(<i32>(MAX_BATCH * 8), 16); // per packet: bucket address, hash
/** Loaded values are summed here so the loads are not optimised away. */
let sink: u64 = 0;

/**
 * The flow hash the prefetch computed for packet i of the last batch, or -1
 * (not a shape it recognised, or beyond its reach). It is hashTuple of exactly
 * the fields the pipeline's flow lookup hashes, so the lookup may use it.
 */
@inline export function prefetchedHash(i: u32): i64 {
  if (i >= MAX_BATCH) return -1;
  let e = buckets + (<usize>i << 3);
  return load<u32>(e) == 0 ? -1 : <i64>load<u32>(e + 4);
}

export function prefetchBatch(desc: usize, n: u32): void {
  if (n > MAX_BATCH) n = MAX_BATCH; // prefetchedHash(i) is -1 past MAX_BATCH
  let base = flowIndexBase();
  let nb = flowIndexBuckets();
  for (let i: u32 = 0; i < n; i++) {
    let d = desc + <usize>i * Layout.DESC_SIZE;
    let e = buckets + (<usize>i << 3);
    store<u32>(e, 0);
    let p = <usize>load<u32>(d + Desc.OFF);
    if (p == 0) continue;
    let len = load<u32>(d + Desc.LEN);
    let link = <u32>load<u16>(d + Desc.LINK);
    let ip = p;
    if (link == 1) {
      if (len < 14 + 40) continue;
      let type = ld16(p + 12);
      if (type != 0x0800 && type != 0x86dd) continue;
      ip = p + 14;
      len -= 14;
    } else if (link != 101 && link != 228 && link != 229) {
      continue;
    }
    let v = ld8(ip) >> 4;
    let h: u32;
    if (v == 4) {
      let hl = (ld8(ip) & 15) << 2;
      let proto = ld8(ip + 9);
      if (hl < 20 || len < hl + 4 || (proto != 6 && proto != 17) || (ld16(ip + 6) & 0x3fff) != 0) continue;
      h = hashTuple(SEED_FLOW, 4, ip + 12, ip + 16, raw16(ip + hl), raw16(ip + hl + 2), proto);
    } else if (v == 6) {
      let proto = ld8(ip + 6);
      if (len < 44 || (proto != 6 && proto != 17)) continue;
      h = hashTuple(SEED_FLOW, 6, ip + 8, ip + 24, raw16(ip + 40), raw16(ip + 42), proto);
    } else {
      continue;
    }
    store<u32>(e, <u32>bucketAddress(base, nb, h));
    store<u32>(e + 4, h);
  }
  let acc: u64 = 0;
  for (let i: u32 = 0; i < n; i++) {
    let b = <usize>load<u32>(buckets + (<usize>i << 3));
    if (b != 0) acc += load<u64>(b);
  }
  for (let i: u32 = 0; i < n; i++) {
    let e = buckets + (<usize>i << 3);
    let b = <usize>load<u32>(e);
    if (b == 0) continue;
    let ref = firstCandidate(b, load<u32>(e + 4));
    if (ref >= 0) acc += load<u64>(flowPtr(<u32>ref >> 1));
  }
  sink += acc;
}
