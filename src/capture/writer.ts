// Writes what the proxy emits: the core frames the forwarded packets of a
// batch into an output buffer in its memory (assembly/capture/emit.ts), in
// the format of the file being read; the host gathers batches there and
// writes them out with one fs.writeSync per WRITE_BYTES or so, and the rest
// at close. (One write per batch, 66 KB for 1024 64-byte packets, cost
// replays of the 64-byte trace 1-11% against this, paired in one process.)

import { closeSync, openSync, writeSync } from "node:fs";
import { CaptureFileError } from "../errors.js";
import type { CaptureExports } from "./reader.js";

const NO_ROOM = 0xffffffff;
/** Output gathered before it is written. */
export const WRITE_BYTES = 1 << 18;

export class CaptureWriter {
  /** Bytes written to the file so far (gathered output counts once written: after close(), all of it). */
  bytesWritten = 0;
  private readonly fd: number;
  private readonly out: number;
  private readonly capacity: number;
  /** Bytes gathered at `out`, not yet written. */
  private used = 0;

  /**
   * `batchBytes` must hold one batch of output: the packets of the batch and
   * of its reflections, each grown by a tunnel header, plus record headers.
   */
  constructor(
    readonly path: string,
    private readonly core: CaptureExports,
    batchBytes: number,
  ) {
    try {
      this.fd = openSync(path, "w");
    } catch (e) {
      throw new CaptureFileError(`cannot create ${path}: ${(e as Error).message.split("\n")[0]}`);
    }
    this.capacity = batchBytes + WRITE_BYTES;
    this.out = core.alloc_buffer(this.capacity);
    if (!this.out) {
      closeSync(this.fd);
      throw new CaptureFileError("out of memory for the capture output buffer");
    }
  }

  /** `n` more bytes were framed at out + used; written once WRITE_BYTES are gathered. */
  private gathered(n: number): void {
    if (n === NO_ROOM) throw new CaptureFileError(`${this.path}: output buffer too small for one batch`);
    this.used += n;
    if (this.used >= WRITE_BYTES) this.flush();
  }

  private flush(): void {
    const n = this.used;
    this.used = 0; // written, or given up on with the error: close() does not write it again
    const mem = new Uint8Array(this.core.memory.buffer);
    let done = 0;
    try {
      while (done < n) done += writeSync(this.fd, mem, this.out + done, n - done);
    } catch (e) {
      throw new CaptureFileError(`cannot write ${this.path}: ${(e as Error).message.split("\n")[0]}`);
    }
    this.bytesWritten += n;
  }

  /** The file header, in the format of the input being read (call after the first readBatch). */
  begin(): void {
    this.gathered(this.core.cap_emit_begin(this.out + this.used, this.capacity - this.used));
  }

  /** Records for the forwarded packets of desc[0..n), each followed by its reflection in desc2 (0: none). */
  writeBatch(desc: number, n: number, desc2 = 0): void {
    // (under WRITE_BYTES gathered, the room left holds a batch)
    this.gathered(this.core.cap_emit(desc, n, desc2, this.out + this.used, this.capacity - this.used));
  }

  /** Write what is gathered and close the file (closed even when that write fails). */
  close(): void {
    try {
      if (this.used > 0) this.flush();
    } finally {
      closeSync(this.fd);
    }
  }
}
