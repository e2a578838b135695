// Overlay frames for the host (the overlay client): seal an inner packet into
// a frame and open one, byte-compatible with the core's
// (assembly/overlay/frame.ts; layout in OverlayFrame, assembly/shared/abi.ts,
// and the README). A frame is a UDP payload: a 24-byte header whose first
// 8 bytes are the SipHash-2-4 tag of everything after them, then the packet.

import { OverlayFrame, OverlayKind } from "../../assembly/shared/abi.js";
import { siphash24Into } from "./siphash.js";

export { OverlayKind };

export type FrameRejection = "malformed" | "bad-tag" | "stale";

export type Opened =
  | { readonly ok: true; readonly kind: OverlayKind; readonly flags: number; readonly sender: number; readonly time: number; readonly inner: Uint8Array }
  | { readonly ok: false; readonly reason: FrameRejection };

const tag = new Uint8Array(8);
let seq = (Math.random() * 0x100000000) >>> 0;

/**
 * A frame of `kind` around `inner`, from `sender` (a node's IPv4 address as
 * a 32-bit number, 0 from a client), stamped `now` (seconds), with OverlayFlag
 * `flags`, tagged with the 16-byte `key`.
 */
export function sealFrame(inner: Uint8Array, kind: OverlayKind, key: Uint8Array, now: number, sender = 0, flags = 0): Uint8Array {
  const f = new Uint8Array(OverlayFrame.HEADER + inner.length);
  const v = new DataView(f.buffer);
  f[OverlayFrame.KIND] = kind;
  f[OverlayFrame.VER] = OverlayFrame.VERSION;
  f[OverlayFrame.FLAGS] = flags;
  v.setUint32(OverlayFrame.SENDER, sender >>> 0);
  v.setUint32(OverlayFrame.TIME, now >>> 0);
  v.setUint32(OverlayFrame.SEQ, seq);
  seq = (seq + 1) >>> 0;
  f.set(inner, OverlayFrame.HEADER);
  siphash24Into(key, f, OverlayFrame.KIND, f.length, f, OverlayFrame.TAG);
  return f;
}

/**
 * Open a frame with the 16-byte `key` at `now` (seconds): its shape, its tag,
 * then its time (within `windowSeconds`). The inner packet is a view into
 * `frame`.
 */
export function openFrame(frame: Uint8Array, key: Uint8Array, now: number, windowSeconds = 30): Opened {
  if (frame.length < OverlayFrame.HEADER || frame[OverlayFrame.VER] !== OverlayFrame.VERSION) return { ok: false, reason: "malformed" };
  const kind = frame[OverlayFrame.KIND];
  if (kind < OverlayKind.ClientData || kind > OverlayKind.SendOut) return { ok: false, reason: "malformed" };
  siphash24Into(key, frame, OverlayFrame.KIND, frame.length, tag, 0);
  let diff = 0;
  for (let i = 0; i < 8; i++) diff |= tag[i] ^ frame[OverlayFrame.TAG + i];
  if (diff !== 0) return { ok: false, reason: "bad-tag" };
  const v = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const time = v.getUint32(OverlayFrame.TIME);
  if (Math.abs(((now >>> 0) - time) | 0) > windowSeconds) return { ok: false, reason: "stale" };
  return { ok: true, kind, flags: frame[OverlayFrame.FLAGS], sender: v.getUint32(OverlayFrame.SENDER), time, inner: frame.subarray(OverlayFrame.HEADER) };
}
