// Getting a capture's packets into memory for the in-process measurements,
// outside the timed region:
//
// - scanCapture(): one pass over the file with the core's own framing (the
//   same CaptureReader the replay uses): packet count, packet bytes, and the
//   first packets as ModelPacket objects for the reference model.
// - frameAll(): every packet of the file framed into a data plane's linear
//   memory at once — descriptors and arena exactly as the replay lays them
//   out (Layout.HEADROOM in front of each packet) — so that the Wasm hot path
//   can be timed alone, one process_batch call per recorded batch.

import { Desc, Layout } from "../../assembly/shared/abi.js";
import { CaptureReader, type CaptureExports } from "../../src/capture/reader.js";
import { instantiate } from "../../src/core/wasm.js";
import type { DataPlane } from "../../src/core/dataplane.js";
import type { ModelPacket } from "../../src/reference/model.js";

/** Descriptor slots per batch, as `pias replay` (its default --batch). */
export const SLOTS = 1024;
/** Arena of one replay batch (src/replay/replay.ts): the largest packet must fit. */
const REPLAY_ARENA = Math.max(SLOTS * 2048, Layout.MAX_PACKET + 4 * Layout.HEADROOM);
/** Arena and descriptor chunks of frameAll(): fresh pages, many batches each. */
const ARENA_CHUNK = 256 << 20;
const DESC_CHUNK_SLOTS = 64 * SLOTS;

export interface ScanResult {
  /** Packets in the file. */
  packets: number;
  /** Sum of the captured packet lengths (link-layer frames, without file framing). */
  packetBytes: number;
  /** The file's first packets, in the batches the replay would form, up to `modelLimit` packets (whole batches). */
  modelBatches: ModelPacket[][];
  modelPackets: number;
}

/** Count the packets of `path` and keep its first `modelLimit` packets (rounded up to a whole batch) as objects. */
export function scanCapture(path: string, modelLimit: number): ScanResult {
  const core = instantiate<CaptureExports>();
  const desc = core.alloc_buffer(SLOTS * Layout.DESC_SIZE);
  const arena = core.alloc_buffer(REPLAY_ARENA);
  const reader = new CaptureReader(path, core, true);
  const modelBatches: ModelPacket[][] = [];
  let packets = 0;
  let packetBytes = 0;
  let modelPackets = 0;
  try {
    for (;;) {
      const n = reader.readBatch(desc, SLOTS, arena, REPLAY_ARENA);
      if (n === 0) break;
      const v = new DataView(core.memory.buffer);
      const keep = modelPackets < modelLimit;
      const batch: ModelPacket[] = [];
      for (let i = 0; i < n; i++) {
        const d = desc + i * Layout.DESC_SIZE;
        const len = v.getUint32(d + Desc.LEN, true);
        packetBytes += len;
        if (keep) {
          const off = v.getUint32(d + Desc.OFF, true);
          batch.push({
            data: new Uint8Array(core.memory.buffer, off, len).slice(),
            link: v.getUint16(d + Desc.LINK, true),
            time: v.getUint32(d + Desc.TIME, true),
            wirelen: v.getUint32(d + Desc.WIRELEN, true),
          });
        }
      }
      if (keep) {
        modelBatches.push(batch);
        modelPackets += n;
      }
      packets += n;
    }
  } finally {
    reader.close();
  }
  return { packets, packetBytes, modelBatches, modelPackets };
}

export interface Framed {
  /** Address of each batch's first descriptor in the data plane's memory. */
  desc: Uint32Array;
  /** Packets of each batch. */
  count: Uint32Array;
  packets: number;
}

/**
 * Frame every packet of `path` into `dp`'s memory: batches of up to SLOTS
 * descriptors, packets laid out by the core's capture scanner with headroom,
 * as the replay does, but all of them at once (nothing is overwritten, so each
 * batch can be processed later without touching the file).
 */
export function frameAll(dp: DataPlane, path: string): Framed {
  const reader = dp.openCaptureReader(path, true);
  const descs: number[] = [];
  const counts: number[] = [];
  let descPos = 0;
  let descEnd = 0;
  let arenaPos = 0;
  let arenaEnd = 0;
  let packets = 0;
  const chunk = (bytes: number): number => dp.allocBuffer(bytes);
  try {
    for (;;) {
      if (descEnd - descPos < SLOTS * Layout.DESC_SIZE) {
        descPos = chunk(DESC_CHUNK_SLOTS * Layout.DESC_SIZE);
        descEnd = descPos + DESC_CHUNK_SLOTS * Layout.DESC_SIZE;
      }
      // the reader needs room for a largest packet with headroom on both sides
      if (arenaEnd - arenaPos < Layout.MAX_PACKET + 4 * Layout.HEADROOM) {
        arenaPos = chunk(ARENA_CHUNK);
        arenaEnd = arenaPos + ARENA_CHUNK;
      }
      const n = reader.readBatch(descPos, SLOTS, arenaPos, arenaEnd - arenaPos);
      if (n === 0) break;
      descs.push(descPos);
      counts.push(n);
      packets += n;
      // the scanner places packet i at OFF and the next one align8(LEN) + HEADROOM further on
      const v = new DataView(dp.memory().buffer);
      const last = descPos + (n - 1) * Layout.DESC_SIZE;
      arenaPos = v.getUint32(last + Desc.OFF, true) + ((v.getUint32(last + Desc.LEN, true) + 7) & ~7);
      descPos += n * Layout.DESC_SIZE;
    }
  } finally {
    reader.close();
  }
  return { desc: Uint32Array.from(descs), count: Uint32Array.from(counts), packets };
}
