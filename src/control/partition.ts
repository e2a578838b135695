// The overlay's TA partition (README "Reaching an overlay", paper §6.2): the
// TA space (IPv4 prefixes x a port range, TCP and UDP alike) is cut into
// blocks of `blockPorts` consecutive ports of one address, and each block is
// owned by the live node with the highest rendezvous score for it (the same
// score as a group's RAPs, src/control/rendezvous.ts). Every node that sees
// the same live nodes computes the same owners, whatever order it learnt
// them in; a node that leaves gives up exactly its own blocks (each to its
// runner-up), a node that joins takes exactly the blocks it now wins.
//
// Each block also has a runner-up, the node with the second highest score:
// its owner if the owner left, and, right after a join, the owner it had
// before (the data plane hands the runner-up replies it has no binding for,
// so the connections of the blocks a newcomer takes survive the join).
//
// Changes are applied incrementally: a join scores every block once against
// the newcomer, a leave re-ranks only the blocks the leaver owned or was
// runner-up of. Owners are indexes into the node list; the data plane gets a
// u16 per block for each. Pure computation: no clock, no I/O.

import { parsePrefix } from "../net/addr.js";
import { idHash, murmur3, scoreParts, type Hash64 } from "./rendezvous.js";

export interface PartitionSpace {
  /** IPv4 prefixes ("203.0.113.0/24"). */
  readonly prefixes: readonly string[];
  /** Ports [min, max] of every address. */
  readonly ports: readonly [number, number];
  /** Ports per block. */
  readonly blockPorts: number;
}

const SEED_BLOCK_HI = 0x0b10c4a1;
const SEED_BLOCK_LO = 0x7e1e57a2;
/** The owner value of a block with no live node. */
export const UNOWNED = -1;

export class Partition {
  /** Blocks in the space. */
  readonly blocks: number;
  readonly blocksPerAddress: number;
  private readonly ranges: { first: number; size: number }[] = [];
  private readonly hashHi: Uint32Array;
  private readonly hashLo: Uint32Array;
  /** Owner of each block: an index into `ids`, or UNOWNED. */
  private readonly owners: Int32Array;
  private readonly bestHi: Uint32Array;
  private readonly bestLo: Uint32Array;
  /** Runner-up of each block, or UNOWNED, and its score. */
  private readonly seconds: Int32Array;
  private readonly secondHi: Uint32Array;
  private readonly secondLo: Uint32Array;
  /** Node ids by index; a node that left leaves a hole (null) that a later join may fill. */
  private readonly ids: (string | null)[] = [];
  private readonly hashes: (Hash64 | null)[] = [];
  private readonly index = new Map<string, number>();
  private readonly s: [number, number] = [0, 0];

  constructor(readonly space: PartitionSpace) {
    const [min, max] = space.ports;
    if (!Number.isInteger(space.blockPorts) || space.blockPorts < 1) throw new RangeError(`blockPorts ${space.blockPorts} is not a positive integer`);
    if (!(min >= 1 && max <= 65535 && min <= max)) throw new RangeError(`ports ${min}-${max} are not a range within 1-65535`);
    this.blocksPerAddress = Math.ceil((max - min + 1) / space.blockPorts);
    let addresses = 0;
    for (const text of space.prefixes) {
      const p = parsePrefix(text);
      if (p.family !== 4) throw new RangeError(`${text}: the overlay's TA space is IPv4`);
      const first = ((p.bytes[0] << 24) | (p.bytes[1] << 16) | (p.bytes[2] << 8) | p.bytes[3]) >>> 0;
      const size = 2 ** (32 - p.length);
      this.ranges.push({ first, size });
      addresses += size;
    }
    this.blocks = addresses * this.blocksPerAddress;
    if (this.blocks > 1 << 26) throw new RangeError(`${this.blocks} blocks: too many (make the prefixes smaller or blockPorts larger)`);
    this.hashHi = new Uint32Array(this.blocks);
    this.hashLo = new Uint32Array(this.blocks);
    this.owners = new Int32Array(this.blocks).fill(UNOWNED);
    this.bestHi = new Uint32Array(this.blocks);
    this.bestLo = new Uint32Array(this.blocks);
    this.seconds = new Int32Array(this.blocks).fill(UNOWNED);
    this.secondHi = new Uint32Array(this.blocks);
    this.secondLo = new Uint32Array(this.blocks);
    const key = new Uint8Array(6);
    for (let b = 0; b < this.blocks; b++) {
      const a = this.addressOf(b);
      key[0] = a >>> 24;
      key[1] = a >>> 16;
      key[2] = a >>> 8;
      key[3] = a;
      const k = b % this.blocksPerAddress;
      key[4] = k >>> 8;
      key[5] = k;
      this.hashHi[b] = murmur3(key, SEED_BLOCK_HI);
      this.hashLo[b] = murmur3(key, SEED_BLOCK_LO);
    }
  }

  /** The address of a block, as an unsigned 32-bit number. */
  addressOf(block: number): number {
    let ai = Math.floor(block / this.blocksPerAddress);
    for (const r of this.ranges) {
      if (ai < r.size) return (r.first + ai) >>> 0;
      ai -= r.size;
    }
    throw new RangeError(`block ${block} is outside the space`);
  }

  /** The block of TA address:port (4-byte address), or -1 outside the space. */
  blockOf(address: Uint8Array, port: number): number {
    const [min, max] = this.space.ports;
    if (address.length !== 4 || port < min || port > max) return -1;
    const a = ((address[0] << 24) | (address[1] << 16) | (address[2] << 8) | address[3]) >>> 0;
    let base = 0;
    for (const r of this.ranges) {
      if (a - r.first >= 0 && a - r.first < r.size) return (base + (a - r.first)) * this.blocksPerAddress + Math.floor((port - min) / this.space.blockPorts);
      base += r.size;
    }
    return -1;
  }

  /** The live node ids, in index order (holes left out). */
  nodes(): string[] {
    return this.ids.filter((id): id is string => id !== null);
  }

  /** The index of a live node, or -1. */
  indexOf(id: string): number {
    return this.index.get(id) ?? -1;
  }

  /** The owner of a block, or undefined when there is no live node. */
  owner(block: number): string | undefined {
    const i = this.owners[block];
    return i === UNOWNED ? undefined : this.ids[i]!;
  }

  /** The runner-up of a block (the owner it would have without its owner), or undefined. */
  runnerUp(block: number): string | undefined {
    const i = this.seconds[block];
    return i === UNOWNED ? undefined : this.ids[i]!;
  }

  /** The owner of TA address:port, or undefined (outside the space, or no live node). */
  ownerOf(address: Uint8Array, port: number): string | undefined {
    const b = this.blockOf(address, port);
    return b < 0 ? undefined : this.owner(b);
  }

  /** Blocks owned by each live node. */
  shares(): Map<string, number> {
    const out = new Map<string, number>(this.nodes().map((id) => [id, 0]));
    for (let b = 0; b < this.blocks; b++) {
      const i = this.owners[b];
      if (i !== UNOWNED) out.set(this.ids[i]!, out.get(this.ids[i]!)! + 1);
    }
    return out;
  }

  /** Make the live nodes exactly `ids`; returns how many blocks changed owner. */
  setNodes(ids: Iterable<string>): number {
    const next = new Set(ids);
    let moved = 0;
    for (const id of [...this.index.keys()]) if (!next.has(id)) moved += this.leave(id);
    for (const id of next) if (!this.index.has(id)) moved += this.join(id);
    return moved;
  }

  /** A node joins: it takes every block it outscores the owner of (the owner becomes runner-up). Returns blocks moved. */
  join(id: string): number {
    if (this.index.has(id)) return 0;
    let i = this.ids.indexOf(null);
    if (i < 0) i = this.ids.length;
    const h = idHash(id);
    this.ids[i] = id;
    this.hashes[i] = h;
    this.index.set(id, i);
    let moved = 0;
    const s = this.s;
    for (let b = 0; b < this.blocks; b++) {
      scoreParts(this.hashHi[b], this.hashLo[b], h.hi, h.lo, s);
      if (this.owners[b] === UNOWNED || above(s, this.bestHi[b], this.bestLo[b])) {
        this.seconds[b] = this.owners[b];
        this.secondHi[b] = this.bestHi[b];
        this.secondLo[b] = this.bestLo[b];
        this.owners[b] = i;
        this.bestHi[b] = s[0];
        this.bestLo[b] = s[1];
        moved++;
      } else if (this.seconds[b] === UNOWNED || above(s, this.secondHi[b], this.secondLo[b])) {
        this.seconds[b] = i;
        this.secondHi[b] = s[0];
        this.secondLo[b] = s[1];
      }
    }
    return moved;
  }

  /** A node leaves: each of its blocks goes to its runner-up. Returns blocks moved. */
  leave(id: string): number {
    const i = this.index.get(id);
    if (i === undefined) return 0;
    this.index.delete(id);
    this.ids[i] = null;
    this.hashes[i] = null;
    let moved = 0;
    for (let b = 0; b < this.blocks; b++) {
      if (this.owners[b] === i) {
        moved++;
        this.owners[b] = this.seconds[b];
        this.bestHi[b] = this.secondHi[b];
        this.bestLo[b] = this.secondLo[b];
      } else if (this.seconds[b] !== i) continue;
      this.rankSecond(b);
    }
    return moved;
  }

  /** Find the runner-up of block b again: the best live node but its owner. */
  private rankSecond(b: number): void {
    const s = this.s;
    this.seconds[b] = UNOWNED;
    for (let j = 0; j < this.hashes.length; j++) {
      const h = this.hashes[j];
      if (h === null || j === this.owners[b]) continue;
      scoreParts(this.hashHi[b], this.hashLo[b], h.hi, h.lo, s);
      if (this.seconds[b] === UNOWNED || above(s, this.secondHi[b], this.secondLo[b])) {
        this.seconds[b] = j;
        this.secondHi[b] = s[0];
        this.secondLo[b] = s[1];
      }
    }
  }

  /** The owner of every block as a data-plane node index (`coreIndex` of the owner's id), 0xffff for none. */
  ownerTable(coreIndex: (id: string) => number): Uint16Array {
    return this.table(this.owners, coreIndex);
  }

  /** The runner-up of every block as a data-plane node index, 0xffff for none. */
  runnerUpTable(coreIndex: (id: string) => number): Uint16Array {
    return this.table(this.seconds, coreIndex);
  }

  private table(of: Int32Array, coreIndex: (id: string) => number): Uint16Array {
    const map = this.ids.map((id) => (id === null ? 0xffff : coreIndex(id)));
    const out = new Uint16Array(this.blocks);
    for (let b = 0; b < this.blocks; b++) {
      const i = of[b];
      out[b] = i === UNOWNED ? 0xffff : map[i];
    }
    return out;
  }
}

/** True when score s is above (hi, lo), as unsigned 64-bit numbers. */
function above(s: [number, number], hi: number, lo: number): boolean {
  return s[0] > hi || (s[0] === hi && s[1] > lo);
}
