// Replay a capture file through one proxy's data plane and write what the
// proxy emits. File bytes go straight into the core's memory in large chunks,
// the core frames, processes and re-frames whole batches; the host only moves
// chunks between the file and memory. No JavaScript object per packet.

import { performance } from "node:perf_hooks";
import type { DataPlane } from "../core/dataplane.js";
import { Layout } from "../../assembly/shared/abi.js";
import { DataPlaneError } from "../errors.js";

export interface ReplayOptions {
  /** Capture to read (pcap or pcapng, detected from its magic number). */
  input: string;
  /** Where to write the proxy's output (same format as the input); omit to only count. */
  output?: string;
  /** Simulate the legacy targets: after each packet NATed to one, emit its reply as the client receives it. */
  reflect?: boolean;
  /** Packets per batch (default 1024). */
  batch?: number;
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

export function replay(dp: DataPlane, opts: ReplayOptions): ReplayReport {
  const slots = opts.batch ?? 1024;
  // An arena must hold at least one largest packet.
  const arenaBytes = Math.max(slots * ARENA_PER_SLOT, Layout.MAX_PACKET + 4 * Layout.HEADROOM);
  const batch = dp.createBatch(slots, arenaBytes);
  const reflections = opts.reflect ? dp.createBatch(slots, arenaBytes) : undefined;
  const before = dp.counters();
  const reader = dp.openCaptureReader(opts.input, true);
  // room for a batch and its reflections, each packet grown by a header, plus record framing
  const outBytes = 2 * arenaBytes + 2 * slots * (Layout.HEADROOM + 64) + (1 << 16);
  const writer = opts.output ? dp.openCaptureWriter(opts.output, outBytes) : undefined;
  let packets = 0;
  let begun = false;
  const t0 = performance.now();
  try {
    for (;;) {
      const n = reader.readBatch(batch.desc, slots, batch.arena, arenaBytes);
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
      writer?.writeBatch(batch.desc, n, reflections ? reflections.desc : 0);
    }
  } finally {
    reader.close();
    writer?.close();
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
