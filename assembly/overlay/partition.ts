// What the overlay's data path knows of the partition (README "Reaching an
// overlay"): the TA space (prefixes x a port range, cut into blocks of
// `blockPorts` ports), the owner and the runner-up of every block as node
// indexes (a u16 each a block, written by the host, which computes the
// rendezvous hashing: src/control/partition.ts), the nodes (address, alive) and which of them is
// this one, and the list of this node's own blocks to hand TAs out of.
//
// Set by control calls and overlay_commit(); the packet path only reads.
// Memory is reserved once by partitionInit(); nothing is allocated after.

import { ld32, raw32 } from "../wire/bytes";
import { finalize, mix, SEED_GROUP } from "../hash";
import { reservePages } from "../memory";
import { scratch } from "../settings";

/** The owner of a block nobody owns (no live node, or outside the space). */
export const NO_NODE: u32 = 0xffff;
const MAX_NODES: u32 = 1024;
const NODE_SLOTS: u32 = 2048; // address -> index, open addressing, at most half full
const MAX_PREFIXES: u32 = 16;

const prefixBase = memory.data(<i32>(MAX_PREFIXES * 4), 16); // host-order first address
const prefixSize = memory.data(<i32>(MAX_PREFIXES * 4), 16); // addresses
let prefixCount: u32 = 0;
let addresses: u32 = 0;

let portMin: u32 = 1024;
let portMax: u32 = 65535;
let blockPorts: u32 = 256;
let blocksPerAddress: u32 = 0;
let blockCount: u32 = 0;

let maxBlocks: u32 = 0;
let owners: usize = 0; // u16 per block
let runners: usize = 0; // u16 per block: the runner-up
let own: usize = 0; // u32 block numbers owned by this node
let ownCount: u32 = 0;

const nodeAddr = memory.data(<i32>(MAX_NODES * 4), 16); // raw
const nodeAlive = memory.data(<i32>MAX_NODES, 16);
const nodeSlots = memory.data(<i32>(NODE_SLOTS * 2), 16); // index + 1, 0 = empty
export let selfIndex: u32 = NO_NODE;

/** Reserve the owner table and own-block list for up to `blocks` blocks. */
export function partitionInit(blocks: u32): bool {
  maxBlocks = blocks;
  owners = reservePages(<usize>blocks * 2);
  runners = reservePages(<usize>blocks * 2);
  own = reservePages(<usize>blocks * 4);
  return owners != 0 && runners != 0 && own != 0;
}

/** The index of the address (raw) in the TA space, or -1 when it is not in the overlay's prefixes. */
export function addressIndex(addr: u32): i64 {
  let a = bswap<u32>(addr);
  let base: u32 = 0;
  for (let i: u32 = 0; i < prefixCount; i++) {
    let first = load<u32>(prefixBase + (<usize>i << 2));
    let size = load<u32>(prefixSize + (<usize>i << 2));
    if (a - first < size) return <i64>(base + (a - first));
    base += size;
  }
  return -1;
}

@inline export function inSpace(addr: u32): bool {
  return addressIndex(addr) >= 0;
}

/** The block of the TA addr:port (raw), or -1 outside the space. */
export function blockOf(addr: u32, portRaw: u32): i64 {
  let port = <u32>bswap<u16>(<u16>portRaw);
  if (port < portMin || port > portMax) return -1;
  let ai = addressIndex(addr);
  if (ai < 0) return -1;
  return ai * <i64>blocksPerAddress + <i64>((port - portMin) / blockPorts);
}

@inline export function ownerOf(block: u32): u32 {
  return <u32>load<u16>(owners + (<usize>block << 1));
}

/** The block's runner-up: its owner before a join (or after its owner leaves). */
@inline export function runnerUpOf(block: u32): u32 {
  return <u32>load<u16>(runners + (<usize>block << 1));
}

/** The address (raw) of a block. */
export function blockAddress(block: u32): u32 {
  let ai = block / blocksPerAddress;
  for (let i: u32 = 0; i < prefixCount; i++) {
    let size = load<u32>(prefixSize + (<usize>i << 2));
    if (ai < size) return bswap<u32>(load<u32>(prefixBase + (<usize>i << 2)) + ai);
    ai -= size;
  }
  return 0;
}

/** First port (host order) of a block, and how many ports it has (the last block of an address may be short). */
@inline export function blockFirstPort(block: u32): u32 {
  return portMin + (block % blocksPerAddress) * blockPorts;
}

@inline export function blockSize(block: u32): u32 {
  let first = blockFirstPort(block);
  return portMax - first + 1 < blockPorts ? portMax - first + 1 : blockPorts;
}

@inline export function ownBlocks(): u32 {
  return ownCount;
}

@inline export function ownBlock(k: u32): u32 {
  return load<u32>(own + (<usize>k << 2));
}

@inline export function nodeAddress(i: u32): u32 {
  return load<u32>(nodeAddr + (<usize>i << 2));
}

@inline export function isLiveNode(i: u32): bool {
  return i < MAX_NODES && load<u8>(nodeAlive + i) != 0;
}

@inline function slotOf(addr: u32): u32 {
  return finalize(mix(SEED_GROUP, addr), 4) & (NODE_SLOTS - 1);
}

/** The index of the node with this address (raw), or -1. */
export function nodeIndexOf(addr: u32): i32 {
  let s = slotOf(addr);
  for (let k: u32 = 0; k < NODE_SLOTS; k++) {
    let v = <u32>load<u16>(nodeSlots + (<usize>s << 1));
    if (v == 0) return -1;
    if (nodeAddress(v - 1) == addr) return <i32>(v - 1);
    s = (s + 1) & (NODE_SLOTS - 1);
  }
  return -1;
}

// ---- exported control calls ----

/** Exported: forget the overlay's prefixes. */
export function overlay_prefixes_clear(): void {
  prefixCount = 0;
  addresses = 0;
}

/** Exported: add the IPv4 prefix whose address is in the scratch area. 0, or -1 when full, invalid or too large. */
export function overlay_prefix_add(length: u32): i32 {
  if (prefixCount >= MAX_PREFIXES || length > 32 || length < 8) return -1;
  let size = <u32>(<u64>1 << (32 - length));
  let first = ld32(scratch) & <u32>(<u64>0xffffffff << (32 - length));
  store<u32>(prefixBase + (<usize>prefixCount << 2), first);
  store<u32>(prefixSize + (<usize>prefixCount << 2), size);
  prefixCount++;
  addresses += size;
  return 0;
}

/**
 * Exported: the port range and block size of the TA space (after the
 * prefixes). Returns the number of blocks, or -1 when the space has more
 * blocks than overlay_init reserved (or the arguments are impossible).
 * Every block is unowned until the next overlay_commit().
 */
export function overlay_set_space(min: u32, max: u32, ports: u32): i32 {
  if (min < 1 || max > 65535 || min > max || ports < 1) return -1;
  let per = (max - min + 1 + ports - 1) / ports;
  let n = <u64>addresses * <u64>per;
  if (n > <u64>maxBlocks || n > 0x7fffffff) return -1;
  portMin = min;
  portMax = max;
  blockPorts = ports;
  blocksPerAddress = per;
  blockCount = <u32>n;
  memory.fill(owners, 0xff, <usize>maxBlocks * 2);
  memory.fill(runners, 0xff, <usize>maxBlocks * 2);
  ownCount = 0;
  return <i32>n;
}

/** Exported: where the host writes the owner of each block (u16 node index, NO_NODE for none). */
export function overlay_owners_ptr(): usize {
  return owners;
}

/** Exported: where the host writes the runner-up of each block (u16 node index, NO_NODE for none). */
export function overlay_runners_ptr(): usize {
  return runners;
}

/** Exported: forget every node. */
export function overlay_nodes_clear(): void {
  memory.fill(nodeAlive, 0, MAX_NODES);
  memory.fill(nodeAddr, 0, MAX_NODES * 4);
  memory.fill(nodeSlots, 0, NODE_SLOTS * 2);
  selfIndex = NO_NODE;
}

/** Exported: node `index` has the IPv4 address in the scratch area and is alive or not. 0, or -1 for a bad index or an address another index has. */
export function overlay_node_set(index: u32, alive: u32): i32 {
  if (index >= MAX_NODES) return -1;
  let addr = raw32(scratch);
  let at = nodeIndexOf(addr);
  if (at >= 0 && <u32>at != index) return -1;
  if (at < 0) {
    if (nodeAddress(index) != 0) return -1; // an index keeps its address
    store<u32>(nodeAddr + (<usize>index << 2), addr);
    let s = slotOf(addr);
    while (load<u16>(nodeSlots + (<usize>s << 1)) != 0) s = (s + 1) & (NODE_SLOTS - 1);
    store<u16>(nodeSlots + (<usize>s << 1), <u16>(index + 1));
  }
  store<u8>(nodeAlive + index, alive != 0 ? 1 : 0);
  return 0;
}

/** Exported: this node's index. */
export function overlay_set_self(index: u32): void {
  selfIndex = index;
}

/** Exported: the owner table was written: list this node's blocks. Returns how many it owns. */
export function overlay_commit(): u32 {
  ownCount = 0;
  for (let b: u32 = 0; b < blockCount; b++) {
    if (ownerOf(b) != selfIndex) continue;
    store<u32>(own + (<usize>ownCount << 2), b);
    ownCount++;
  }
  return ownCount;
}
