// Reads a capture file into the core: big chunks go straight from the file
// into a staging buffer in the core's memory (fs.readSync into the Wasm
// memory), and the core frames the records (assembly/capture/scan.ts). The
// host never looks at a record; it only keeps the unconsumed tail of a chunk.

import { closeSync, openSync, readSync } from "node:fs";
import { basename } from "node:path";
import { CaptureError, CaptureFormat, Layout } from "../../assembly/shared/abi.js";
import { CaptureFileError } from "../errors.js";
import type { CoreExports } from "../core/wasm.js";

/** The core's capture exports (see assembly/index.ts). */
export interface CaptureExports extends CoreExports {
  alloc_buffer(size: number): number;
  cap_reset(): void;
  cap_scan(stage: number, stageLen: number, eof: number, desc: number, max: number, arena: number, arenaLen: number): number;
  cap_consumed(): number;
  cap_error(): number;
  cap_error_offset(): number;
  cap_format(): number;
  cap_interfaces(): number;
  cap_linktype(iface: number): number;
  cap_strict_links(on: number): void;
  cap_error_link(): number;
  cap_emit_begin(out: number, cap: number): number;
  cap_emit(desc: number, n: number, desc2: number, out: number, cap: number): number;
}

/** Staging chunk: large enough for the largest record several times over. */
export const STAGE_BYTES = 8 << 20;
/** Refill the stage when fewer bytes than a largest record (with its framing) are left in it. */
const REFILL_BELOW = Layout.MAX_PACKET + 65536 + 64;

const MESSAGES: Record<number, string> = {
  [CaptureError.BadMagic]: "not a pcap or pcapng file (unknown magic number)",
  [CaptureError.Truncated]: "file ends in the middle of a record",
  [CaptureError.BadBlock]: "corrupt record or block",
  [CaptureError.RecordTooLarge]: `record larger than ${Layout.MAX_PACKET} bytes`,
  [CaptureError.UnknownInterface]: "packet of an interface the file never described",
  [CaptureError.BadHeader]: "corrupt file or section header",
  [CaptureError.UnsupportedLinkType]: "packet of an unsupported link type",
};

export class CaptureReader {
  /** Bytes read from the file so far. */
  bytesRead = 0;
  private readonly fd: number;
  private readonly stage: number;
  /** Unread bytes are stage[start, end): records are framed in place; the tail moves to the front only to refill. */
  private start = 0;
  private end = 0;
  private eof = false;
  private readonly name: string;

  /** `strictLinks`: a packet on a link type the data plane cannot parse is an error, not a drop. */
  constructor(
    readonly path: string,
    private readonly core: CaptureExports,
    strictLinks = false,
  ) {
    this.name = basename(path);
    try {
      this.fd = openSync(path, "r");
    } catch (e) {
      throw new CaptureFileError(`cannot open ${path}: ${(e as Error).message.split("\n")[0]}`);
    }
    this.stage = core.alloc_buffer(STAGE_BYTES);
    if (!this.stage) throw new CaptureFileError("out of memory for the capture staging buffer");
    core.cap_reset();
    core.cap_strict_links(strictLinks ? 1 : 0);
  }

  get format(): CaptureFormat {
    return this.core.cap_format();
  }

  /** Move the unread tail to the front and read until the stage is full or the file ends. */
  private fill(): void {
    const mem = new Uint8Array(this.core.memory.buffer);
    if (this.start > 0) {
      mem.copyWithin(this.stage, this.stage + this.start, this.stage + this.end);
      this.end -= this.start;
      this.start = 0;
    }
    while (!this.eof && this.end < STAGE_BYTES) {
      const got = readSync(this.fd, mem, this.stage + this.end, STAGE_BYTES - this.end, null);
      if (got === 0) this.eof = true;
      this.end += got;
      this.bytesRead += got;
    }
  }

  /**
   * Frame up to `max` packets into `desc`/`arena` (in the core's memory; the
   * arena must hold a largest packet plus 2 x HEADROOM). Returns 0 at the end
   * of the file. Throws CaptureFileError on a corrupt file.
   */
  readBatch(desc: number, max: number, arena: number, arenaLen: number): number {
    for (;;) {
      // refill only when what is left might not hold a whole record
      if (!this.eof && this.end - this.start < REFILL_BELOW) this.fill();
      const n = this.core.cap_scan(this.stage + this.start, this.end - this.start, this.eof ? 1 : 0, desc, max, arena, arenaLen);
      const err = this.core.cap_error();
      if (err !== CaptureError.Ok) {
        const at = this.core.cap_error_offset();
        const empty = this.bytesRead === 0 && err === CaptureError.BadMagic ? "empty file, " : "";
        const what = err === CaptureError.UnsupportedLinkType
          ? `link type ${this.core.cap_error_link()} is not supported (Ethernet 1, NULL 0, raw IP 101/228/229, Linux SLL 113, SLL2 276)`
          : (MESSAGES[err] ?? `error ${err}`);
        throw new CaptureFileError(`${this.name}: ${empty}${what} at byte ${at}`);
      }
      const used = this.core.cap_consumed();
      this.start += used;
      if (n > 0) return n;
      if (this.eof && this.start === this.end) return 0;
      if (used === 0) {
        if (this.eof || (this.start === 0 && this.end === STAGE_BYTES)) {
          throw new CaptureFileError(`${this.name}: record does not fit the ${STAGE_BYTES}-byte buffer at byte ${this.bytesRead - (this.end - this.start)}`);
        }
        this.fill(); // a record is cut at the end of the stage
      }
    }
  }

  close(): void {
    closeSync(this.fd);
  }
}
