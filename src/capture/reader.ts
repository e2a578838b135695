// Reads a capture file into the core: big chunks go straight from the file
// into a staging buffer in the core's memory (fs.readSync into the Wasm
// memory), and the core frames the records (assembly/capture/scan.ts). The
// host never looks at a record; it only keeps the unconsumed tail of a chunk.

import { closeSync, fstatSync, openSync, read, readSync } from "node:fs";
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

/** Bytes read from the file at once, into one half of the stage, reading ahead. */
export const STAGE_BYTES = 8 << 20;
/**
 * Bytes read at once in place (a small capture, or a reader made without
 * readAhead): the stage is read into again and again, so a small one is all
 * the reader ever touches. Each page the core's memory backs for the first
 * time costs a fault (12-20 µs on this VM): an 8 MiB stage read a 2.9 MB
 * capture into 764 fresh pages, this one (with its carry room) 112; 1 MiB
 * reads 304. Each read still frames 64 KiB or more (REFILL_BELOW).
 */
export const IN_PLACE_BYTES = 1 << 18;
/** Refill the stage when fewer bytes than a largest record (with its framing) are left in it. */
const REFILL_BELOW = Layout.MAX_PACKET + 65536 + 64;
/** Room in front of each half's data for the unread tail of the other half (always under REFILL_BELOW). */
const CARRY = (REFILL_BELOW + 0xffff) & ~0xffff;

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
  /** Bytes in the file when it is a regular file (a read-ahead past them would only find its end), else Infinity. */
  private readonly fileBytes: number;
  /**
   * Halves of CARRY bytes then `chunk` bytes the file is read into. Reading
   * ahead, two of STAGE_BYTES: one is framed while the other is read. Else
   * one of IN_PLACE_BYTES, read into again once framed, after its unread tail.
   */
  private readonly stage: number;
  private readonly halves: number;
  private readonly chunk: number;
  /** The half being framed; its unread bytes are [start, end) (addresses in the core's memory). */
  private half = 0;
  private start: number;
  private end: number;
  private eof = false;
  /** A read into the other half's data, started by readBatchAhead: its byte count, or the error it failed with. */
  private ahead: Promise<number | Error> | null = null;
  private readonly name: string;

  /**
   * `strictLinks`: a packet on a link type the data plane cannot parse is an
   * error, not a drop. `readAhead`: room to read ahead (readBatchAhead),
   * twice the memory.
   */
  constructor(
    readonly path: string,
    private readonly core: CaptureExports,
    strictLinks = false,
    readAhead = false,
  ) {
    this.name = basename(path);
    try {
      this.fd = openSync(path, "r");
    } catch (e) {
      throw new CaptureFileError(`cannot open ${path}: ${firstLine(e)}`);
    }
    const st = fstatSync(this.fd);
    this.fileBytes = st.isFile() ? st.size : Infinity;
    // fresh pages: only those the file is read into are ever touched (but V8 counts them all against its heap limits)
    this.halves = readAhead ? 2 : 1;
    this.chunk = readAhead ? STAGE_BYTES : IN_PLACE_BYTES;
    this.stage = core.alloc_buffer(this.halves * (CARRY + this.chunk));
    if (!this.stage) {
      closeSync(this.fd);
      throw new CaptureFileError("out of memory for the capture staging buffer");
    }
    this.start = this.end = this.dataOf(this.half);
    core.cap_reset();
    core.cap_strict_links(strictLinks ? 1 : 0);
  }

  get format(): CaptureFormat {
    return this.core.cap_format();
  }

  private dataOf(half: number): number {
    return this.stage + half * (CARRY + this.chunk) + CARRY;
  }

  /** The half read into next. */
  private get other(): number {
    return this.halves === 2 ? this.half ^ 1 : this.half;
  }

  private readInto(at: number): number {
    try {
      return readSync(this.fd, new Uint8Array(this.core.memory.buffer), at, this.chunk, null);
    } catch (e) {
      throw new CaptureFileError(`cannot read ${this.path}: ${firstLine(e)}`);
    }
  }

  /**
   * Read into `at` on libuv's thread pool while the caller goes on. The core's
   * memory does not move meanwhile: nothing grows it during a replay, and V8
   * grows a Wasm memory in place.
   */
  private readAhead(at: number): Promise<number | Error> {
    return new Promise((resolve) => {
      read(this.fd, new Uint8Array(this.core.memory.buffer), at, this.chunk, null, (err, got) => resolve(err ?? got));
    });
  }

  /** Frame the half read into next: move this half's unread tail in front of its data, whose address is returned. */
  private carry(): number {
    const next = this.other;
    const data = this.dataOf(next);
    const tail = this.end - this.start;
    if (tail > 0) new Uint8Array(this.core.memory.buffer).copyWithin(data - tail, this.start, this.end);
    this.half = next;
    this.start = data - tail;
    this.end = data;
    return data;
  }

  /** `got` bytes were read after the unread ones (0: the end of the file). */
  private took(got: number): void {
    this.end += got;
    this.bytesRead += got;
    if (got === 0) this.eof = true;
  }

  /**
   * Frame up to `max` packets into `desc`/`arena` (in the core's memory; the
   * arena must hold a largest packet plus 2 x HEADROOM). Returns 0 at the end
   * of the file. Throws CaptureFileError on a corrupt file. Reads when it
   * needs bytes, and waits for them.
   */
  readBatch(desc: number, max: number, arena: number, arenaLen: number): number {
    for (;;) {
      const n = this.frame(desc, max, arena, arenaLen);
      if (n >= 0) return n;
      this.took(this.readInto(this.carry()));
    }
  }

  /**
   * readBatch, reading ahead: each time it moves to the next chunk of the
   * file it starts reading the one after, which the thread pool does while
   * the caller processes this one. A reader made without `readAhead` reads
   * in place, as readBatch does.
   */
  async readBatchAhead(desc: number, max: number, arena: number, arenaLen: number): Promise<number> {
    for (;;) {
      const n = this.frame(desc, max, arena, arenaLen);
      if (n >= 0) return n;
      const pending = this.ahead;
      this.ahead = null;
      const at = this.carry(); // (in front of what the pending read brings, if any)
      const got = pending ? await pending : this.readInto(at);
      if (got instanceof Error) throw new CaptureFileError(`cannot read ${this.path}: ${firstLine(got)}`);
      this.took(got);
      // the half just left is free (framed, its tail carried); read into it unless the file has no more
      if (this.halves === 2 && !this.eof && this.bytesRead < this.fileBytes) this.ahead = this.readAhead(this.dataOf(this.other));
    }
  }

  /** Packets framed from the stage (0: the end of the file), or -1 when it needs more of the file first. */
  private frame(desc: number, max: number, arena: number, arenaLen: number): number {
    for (;;) {
      // read more only when what is left might not hold a whole record
      if (!this.eof && this.end - this.start < REFILL_BELOW) return -1;
      const n = this.core.cap_scan(this.start, this.end - this.start, this.eof ? 1 : 0, desc, max, arena, arenaLen);
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
        // a whole record was there and nothing was framed: the arena cannot take one packet (a caller's bug)
        if (this.eof || this.end - this.start >= REFILL_BELOW) {
          throw new CaptureFileError(`${this.name}: cannot frame the record at byte ${this.bytesRead - (this.end - this.start)} (arena of ${arenaLen} bytes)`);
        }
        return -1; // a record is cut at the end of the stage
      }
    }
  }

  /** Close the file (after the read in flight, if readBatchAhead left one). */
  close(): void {
    const fd = this.fd;
    if (!this.ahead) return closeSync(fd);
    void this.ahead.then(() => {
      try {
        closeSync(fd);
      } catch {
        // nothing is left to do with it
      }
    });
    this.ahead = null;
  }
}

export function firstLine(e: unknown): string {
  return (e as Error).message.split("\n")[0];
}
