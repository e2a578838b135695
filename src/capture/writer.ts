// Writes what the proxy emits: the core frames the forwarded packets of a
// batch into an output buffer in its memory (assembly/capture/emit.ts), in
// the format of the file being read; the host writes that buffer out with one
// fs.writeSync per batch.

import { closeSync, openSync, writeSync } from "node:fs";
import { CaptureFileError } from "../errors.js";
import type { CaptureExports } from "./reader.js";

const NO_ROOM = 0xffffffff;

export class CaptureWriter {
  bytesWritten = 0;
  private readonly fd: number;
  private readonly out: number;

  /**
   * `capacity` must hold one batch of output: the packets of the batch and of
   * its reflections, each grown by a tunnel header, plus record headers.
   */
  constructor(
    readonly path: string,
    private readonly core: CaptureExports,
    private readonly capacity: number,
  ) {
    try {
      this.fd = openSync(path, "w");
    } catch (e) {
      throw new CaptureFileError(`cannot create ${path}: ${(e as Error).message.split("\n")[0]}`);
    }
    this.out = core.alloc_buffer(capacity);
    if (!this.out) throw new CaptureFileError("out of memory for the capture output buffer");
  }

  private flush(n: number): void {
    if (n === NO_ROOM) throw new CaptureFileError(`${this.path}: output buffer too small for one batch`);
    if (n === 0) return;
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
    this.flush(this.core.cap_emit_begin(this.out, this.capacity));
  }

  /** Records for the forwarded packets of desc[0..n), each followed by its reflection in desc2 (0: none). */
  writeBatch(desc: number, n: number, desc2 = 0): void {
    this.flush(this.core.cap_emit(desc, n, desc2, this.out, this.capacity));
  }

  close(): void {
    closeSync(this.fd);
  }
}
