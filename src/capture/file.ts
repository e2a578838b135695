// Whole-file convenience for tests, tools and library users: every packet of
// a capture as a JavaScript object. Allocates per packet — not for the replay
// path, which frames batches inside the core (reader.ts).

import { CaptureFormat, Desc, Layout } from "../../assembly/shared/abi.js";
import { instantiate } from "../core/wasm.js";
import { CaptureReader, type CaptureExports } from "./reader.js";

export interface CapturedPacket {
  data: Uint8Array;
  /** Length on the wire (>= data.length). */
  wirelen: number;
  /** pcap LINKTYPE. */
  link: number;
  /** Interface number (pcapng, across sections; 0 for pcap). */
  iface: number;
  /** Raw timestamp words as in the file. */
  tsHi: number;
  tsLo: number;
  /** Unix seconds. */
  time: number;
}

export interface Capture {
  format: CaptureFormat;
  packets: CapturedPacket[];
}

const SLOTS = 256;

export function readCapture(path: string): Capture {
  const core = instantiate<CaptureExports>();
  const desc = core.alloc_buffer(SLOTS * Layout.DESC_SIZE);
  const arenaBytes = Layout.MAX_PACKET + SLOTS * 2048;
  const arena = core.alloc_buffer(arenaBytes);
  const reader = new CaptureReader(path, core);
  const packets: CapturedPacket[] = [];
  try {
    for (;;) {
      const n = reader.readBatch(desc, SLOTS, arena, arenaBytes);
      if (n === 0) break;
      const v = new DataView(core.memory.buffer);
      const mem = new Uint8Array(core.memory.buffer);
      for (let i = 0; i < n; i++) {
        const d = desc + i * Layout.DESC_SIZE;
        const off = v.getUint32(d + Desc.OFF, true);
        packets.push({
          data: mem.slice(off, off + v.getUint32(d + Desc.LEN, true)),
          wirelen: v.getUint32(d + Desc.WIRELEN, true),
          link: v.getUint16(d + Desc.LINK, true),
          iface: v.getUint16(d + Desc.IFACE, true),
          tsHi: v.getUint32(d + Desc.TS_HI, true),
          tsLo: v.getUint32(d + Desc.TS_LO, true),
          time: v.getUint32(d + Desc.TIME, true),
        });
      }
    }
  } finally {
    reader.close();
  }
  return { format: reader.format, packets };
}
