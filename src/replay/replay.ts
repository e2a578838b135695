// Replay a capture file through one proxy's data plane and write what the
// proxy emits. File bytes go straight into the core's memory in large chunks,
// the core frames, processes and re-frames whole batches; the host only moves
// chunks between the file and memory, on the thread pool while the core
// works. No JavaScript object per packet.

import { statSync, type Stats } from "node:fs";
import { performance } from "node:perf_hooks";
import type { DataPlane, DataPlaneSettings } from "../core/dataplane.js";
import type { Capacity } from "../config/types.js";
import { Layout } from "../../assembly/shared/abi.js";
import { CaptureFileError, DataPlaneError } from "../errors.js";
import { STAGE_BYTES } from "../capture/reader.js";

export interface ReplayOptions {
  /** Capture to read (pcap or pcapng, detected from its magic number). */
  input: string;
  /** Where to write the proxy's output (same format as the input); omit to only count. */
  output?: string;
  /** Simulate the legacy targets: after each packet NATed to one, emit its reply as the client receives it. */
  reflect?: boolean;
  /** Packets per batch (default: SMALL_BATCH for a capture read in place, 1024 for one read ahead). */
  batch?: number;
  /** Read ahead and write behind on the thread pool (default: for a capture larger than OVERLAP_ABOVE). */
  overlap?: boolean;
  /** Called after every batch: bytes of the input read so far, its size, packets so far. */
  onProgress?: (bytesRead: number, fileBytes: number, packets: number) => void;
}

export interface ReplayReport {
  input: string;
  output: string | null;
  /** Packets read from the input. */
  packets: number;
  /** Input packets the proxy sent on (to a target, to a client, or as a translated ICMP error). */
  forwarded: number;
  /** Synthesised target replies (--reflect) that came out of the proxy. */
  reflected: number;
  /** ICMP errors the proxy sent back in place of a packet too big for the tunnel (also counted as dropped). */
  generated: number;
  /** Drop reason -> count. */
  dropped: Record<string, number>;
  /** Flows created. */
  flows: number;
  /** Flows still live at the end. */
  liveFlows: number;
  /** "address:port" of each target -> packets forwarded to it. */
  targets: Record<string, number>;
  bytesIn: number;
  bytesOut: number;
  seconds: number;
  mpps: number;
}

const ARENA_PER_SLOT = 2048;

function stat(path: string): Stats | undefined {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}

/** Refuse an output that is the input under another name or the same one: writing it would destroy what is read. */
function checkOutput(input: string, output: string): void {
  const i = stat(input);
  const o = stat(output);
  if (i && o && i.isFile() && i.dev === o.dev && i.ino === o.ino) {
    throw new CaptureFileError(`${output} is the input file: the replay would overwrite what it reads`);
  }
}

/** Bytes in the file, Infinity when it cannot be read (the reader then reports why, in its own words). */
function fileSize(path: string): number {
  return stat(path)?.size ?? Infinity;
}

/**
 * Bytes of capture file per packet that can open a flow or a fragment entry,
 * at the least: a 16-byte pcap record header (pcapng: 32) and 24 bytes of IP
 * (an IPv4 header and the ports or echo identifier).
 */
const BYTES_PER_FLOW_PACKET = 40;

/**
 * Table sizes for replaying `input`: the configured capacity, but never more
 * flows or fragment entries than the file has packets that could open one,
 * so a small capture reserves and touches a small table. The replay's result
 * is the same as with the configured capacity, which it could never fill.
 */
export function replayCapacity(capacity: Capacity, input: string): NonNullable<DataPlaneSettings["capacity"]> {
  const size = fileSize(input);
  const most = Math.max(1024, Math.ceil(size / BYTES_PER_FLOW_PACKET));
  const fragments = Math.max(1024, Math.floor(capacity.flows / 16));
  // (never prefaulted: the bound is an upper one, and touching pages no flow uses is the cost this sizing avoids)
  return { ...capacity, flows: Math.min(capacity.flows, most), fragments: Math.min(fragments, most), prefault: false };
}

/**
 * A capture larger than this is read ahead and its output written behind on
 * libuv's thread pool, so that the reads and writes of the next and last
 * chunks run beside the core's work on this one (64-byte trace, 325 MB: 22%
 * less time, median of 12 runs interleaved). One read holds a smaller one,
 * and the thread pool's start would cost it more than the overlap saves
 * (ppp__example2.pcap: 6 ms).
 */
const OVERLAP_ABOVE = STAGE_BYTES;

/**
 * Packets per batch of a capture read in place: its run is short enough that
 * first touches of fresh pages weigh, and a batch's arena and output are
 * touched whole (ppp__example2.pcap, 4,709 packets of 607 bytes, read 1 MiB
 * at a time: 1024-packet batches 770 page faults and 15.6-20.7 ms of
 * pipeline, 256-packet ones 520 and 10.8-17.5 ms). A long replay keeps 1024:
 * its buffers are touched once in a run of seconds, and each batch costs a
 * turn of the event loop.
 */
const SMALL_BATCH = 256;

/*
 * HUGE_BUFFERS: a capture that is read ahead (larger than OVERLAP_ABOVE) has
 * its buffers (batch arena, 16 MiB of staging, output regions) on huge pages,
 * where the addon and the kernel allow: every page of the staging and arena is
 * written once at least, and a 2 MiB fault backs what 512 4 KiB faults would
 * (on this VM a fresh 4 KiB page costs 12-13 µs to fault in, 16 MiB 50 ms;
 * with huge pages 8-18 ms). A smaller capture touches only a few of their
 * pages, which a 2 MiB fault would overshoot.
 */

/** Replay opts.input through `dp` (see OVERLAP_ABOVE and HUGE_BUFFERS). */
export async function replay(dp: DataPlane, opts: ReplayOptions): Promise<ReplayReport> {
  if (opts.output) checkOutput(opts.input, opts.output);
  const fileBytes = fileSize(opts.input);
  const overlap = opts.overlap ?? fileBytes > OVERLAP_ABOVE;
  const slots = opts.batch ?? (overlap ? 1024 : SMALL_BATCH);
  // An arena must hold at least one largest packet.
  const arenaBytes = Math.max(slots * ARENA_PER_SLOT, Layout.MAX_PACKET + 4 * Layout.HEADROOM);
  const buffers = dp.memoryBytes(); // the replay's buffers are reserved from here on
  const batch = dp.createBatch(slots, arenaBytes);
  const reflections = opts.reflect ? dp.createBatch(slots, arenaBytes) : undefined;
  const before = dp.counters();
  const reader = dp.openCaptureReader(opts.input, true, overlap);
  // room for a batch and its reflections, each packet grown by a header, plus record framing
  const outBytes = 2 * arenaBytes + 2 * slots * (Layout.HEADROOM + 64) + (1 << 16);
  const writer = opts.output ? dp.openCaptureWriter(opts.output, outBytes, overlap) : undefined;
  if (overlap) dp.adviseHugePagesFrom(buffers); // see HUGE_BUFFERS
  let packets = 0;
  let begun = false;
  const t0 = performance.now();
  try {
    for (;;) {
      const n = await reader.readBatchAhead(batch.desc, slots, batch.arena, arenaBytes); // (in place unless overlap)
      if (writer && !begun) {
        writer.begin(); // the format is known once the first chunk was read
        begun = true;
      }
      if (n === 0) break;
      packets += n;
      dp.processBatch(batch.desc, n);
      if (reflections) {
        dp.reflectBatch(batch.desc, n, reflections);
        dp.processBatch(reflections.desc, n);
      }
      await writer?.writeBatchBehind(batch.desc, n, reflections ? reflections.desc : 0);
      opts.onProgress?.(reader.bytesRead, fileBytes, packets);
    }
  } finally {
    reader.close();
    await writer?.closeBehind();
  }
  const seconds = (performance.now() - t0) / 1000;
  const after = dp.counters();
  if (after.packets - before.packets !== packets) {
    throw new DataPlaneError(`replay lost count: read ${packets} packets, core saw ${after.packets - before.packets}`);
  }
  const dropped: Record<string, number> = {};
  for (const [reason, n] of Object.entries(after.drops)) {
    const d = n - (before.drops[reason] ?? 0);
    if (d) dropped[reason] = d;
  }
  const targets: Record<string, number> = {};
  for (const t of dp.targetStats()) targets[t.endpoint] = (targets[t.endpoint] ?? 0) + t.packets;
  return {
    input: opts.input,
    output: opts.output ?? null,
    packets,
    forwarded: after.forwarded - before.forwarded,
    reflected: after.reflected - before.reflected,
    generated: after.icmpGenerated - before.icmpGenerated,
    dropped,
    flows: after.flowsCreated - before.flowsCreated,
    liveFlows: after.flowsLive,
    targets,
    bytesIn: reader.bytesRead,
    bytesOut: writer?.bytesWritten ?? 0,
    seconds,
    mpps: seconds > 0 ? packets / seconds / 1e6 : 0,
  };
}
