// Overlay frames (README "Reaching an overlay"): the 24-byte header in front
// of an inner packet, sealed with a SipHash-2-4 tag over everything after the
// tag, under the key of the frame's kind: the client key (derived from the
// overlay key) for client <-> node frames, the node key (derived from the
// cluster key, which clients never see) for node <-> node frames.
//
// seal() writes a header in place; open() checks one. Neither moves or
// copies the packet; allocation-free. src/net/overlay-frame.ts is the host's
// twin (the overlay client) and must stay byte-compatible.

import { OverlayFrame, OverlayKind, Reason } from "../shared/abi";
import { ld32, raw32, st32, st8 } from "../wire/bytes";
import { siphash24 } from "./siphash";

/** Frames stamped more than this many seconds from the packet clock are stale. */
export let windowSeconds: u32 = 30;

let clientK0: u64 = 0;
let clientK1: u64 = 0;
let nodeK0: u64 = 0;
let nodeK1: u64 = 0;
let seq: u32 = 0;

/** Set the keys from 32 bytes at `p`: the client key, then the node key (16 bytes each). */
export function setKeys(p: usize): void {
  clientK0 = load<u64>(p);
  clientK1 = load<u64>(p + 8);
  nodeK0 = load<u64>(p + 16);
  nodeK1 = load<u64>(p + 24);
}

export function setWindow(seconds: u32): void {
  windowSeconds = seconds;
}

@inline function isNodeKind(kind: u32): bool {
  return kind == OverlayKind.Reply || kind == OverlayKind.SendOut;
}

@inline function tagOf(kind: u32, hdr: usize, len: u32): u64 {
  let at = hdr + <usize>OverlayFrame.KIND;
  let n = <usize>len - <usize>OverlayFrame.KIND;
  return isNodeKind(kind) ? siphash24(nodeK0, nodeK1, at, n) : siphash24(clientK0, clientK1, at, n);
}

/**
 * Write a header of `kind` at `hdr` for a frame of `len` bytes (header and
 * inner packet), from `sender` (a raw IPv4 address, 0 for none) at time `now`
 * with OverlayFlag `flags`, and its tag.
 */
export function seal(hdr: usize, len: u32, kind: u32, sender: u32, now: u32, flags: u32): void {
  st8(hdr + OverlayFrame.KIND, kind);
  st8(hdr + OverlayFrame.VER, OverlayFrame.VERSION);
  st8(hdr + OverlayFrame.FLAGS, flags);
  st8(hdr + OverlayFrame.FLAGS + 1, 0);
  store<u32>(hdr + OverlayFrame.SENDER, sender);
  st32(hdr + OverlayFrame.TIME, now);
  st32(hdr + OverlayFrame.SEQ, seq++);
  store<u64>(hdr + OverlayFrame.TAG, tagOf(kind, hdr, len));
}

/**
 * Check the frame of `len` bytes at `hdr` as a node receives it (client data,
 * replies, send-outs): its shape, then its tag (so that a stranger's frame is
 * always a bad tag, whatever else is wrong with it), then its time.
 */
export function open(hdr: usize, len: u32, now: u32): Reason {
  if (len < <u32>OverlayFrame.HEADER) return Reason.OverlayMalformed;
  let kind = <u32>load<u8>(hdr + OverlayFrame.KIND);
  if (<u32>load<u8>(hdr + OverlayFrame.VER) != <u32>OverlayFrame.VERSION) return Reason.OverlayMalformed;
  if (kind != OverlayKind.ClientData && !isNodeKind(kind)) return Reason.OverlayMalformed;
  if (load<u64>(hdr + OverlayFrame.TAG) != tagOf(kind, hdr, len)) return Reason.OverlayBadTag;
  let t = ld32(hdr + OverlayFrame.TIME);
  let skew = <i32>(now - t);
  if (skew > <i32>windowSeconds || skew < -<i32>windowSeconds) return Reason.OverlayStale;
  return Reason.None;
}

@inline export function frameKind(hdr: usize): u32 {
  return <u32>load<u8>(hdr + OverlayFrame.KIND);
}

@inline export function frameFlags(hdr: usize): u32 {
  return <u32>load<u8>(hdr + OverlayFrame.FLAGS);
}

@inline export function frameSender(hdr: usize): u32 {
  return raw32(hdr + OverlayFrame.SENDER);
}
