// Writes what the proxy emits: the core frames the forwarded packets of a
// batch into an output buffer in its memory (assembly/capture/emit.ts), in
// the format of the file being read; the host gathers batches there and
// writes them out WRITE_BYTES or so at a time, and the rest at close. (One
// write per batch, 66 KB for 1024 64-byte packets, cost replays of the
// 64-byte trace 1-11% against this, paired in one process.) Writing behind
// (writeBatchBehind), the gathered bytes of one region are written on
// libuv's thread pool while the next batches gather in the other.

import { close, closeSync, fchmodSync, fstatSync, lstatSync, openSync, unlinkSync, write, writeSync } from "node:fs";
import { CaptureFileError } from "../errors.js";
import { firstLine, type CaptureExports } from "./reader.js";

const NO_ROOM = 0xffffffff;
/** Output gathered before it is written. */
export const WRITE_BYTES = 1 << 18;
/**
 * Writing behind, output gathered before a write is started: each costs the
 * caller a turn of the event loop to see it done. (64-byte trace, 12 rounds
 * interleaved: 1 MiB 0.97 s median, 2 MiB 1.08, writing in place 1.25.)
 */
export const WRITE_BEHIND_BYTES = 1 << 20;

/** An existing output of at least this many bytes is replaced, not truncated (openOutput). */
export const REPLACE_FROM = 8 << 20;

/**
 * Open `path` for writing from empty. Truncating a large existing file costs
 * the caller its page cache, freed in the open, and on ext4 a flush of the
 * new data at close (a file truncated to nothing and written again is
 * flushed then, auto_da_alloc): 0.12-0.16 s of a replay of the 64-byte
 * trace over its own earlier output. So an existing regular file of at
 * least REPLACE_FROM bytes, ours and with no other name, is replaced: its
 * name is unlinked while a descriptor holds it, a new file of the same mode
 * is created, and that descriptor is closed on the thread pool, where the
 * old file's pages are then freed. Anything else (a device, a FIFO, a
 * symbolic link, a hard-linked or another user's file, a small one) is
 * truncated as `open(path, "w")` does, and so is a file whose replacement
 * fails.
 */
function openOutput(path: string): number {
  let st;
  try {
    st = lstatSync(path);
  } catch {
    return openSync(path, "w"); // none yet
  }
  if (!st.isFile() || st.nlink !== 1 || st.size < REPLACE_FROM || st.uid !== process.getuid?.()) return openSync(path, "w");
  let old: number;
  try {
    old = openSync(path, "r");
  } catch {
    return openSync(path, "w");
  }
  let fd: number | undefined;
  try {
    if (fstatSync(old).ino === st.ino) {
      unlinkSync(path);
      fd = openSync(path, "wx", 0o600);
      fchmodSync(fd, st.mode & 0o7777);
    }
  } catch {
    // another process made the name meanwhile, or the directory is not ours to change: truncate
  }
  close(old, () => {}); // (the old file's last descriptor: its pages are freed on the thread pool)
  return fd ?? openSync(path, "w");
}

export class CaptureWriter {
  /** Bytes written to the file so far (gathered output counts once written: after close(), all of it). */
  bytesWritten = 0;
  private readonly fd: number;
  /** Regions of `capacity` bytes (two when writing behind); output gathers in regions[cur] (the other may be being written). */
  private readonly regions: number[];
  private readonly capacity: number;
  /** Bytes gathered before a write. */
  private readonly threshold: number;
  private cur = 0;
  /** Bytes gathered in the current region, not yet written. */
  private used = 0;
  /** The other region's write, started by writeBatchBehind: null once done, or the error it failed with. */
  private behind: Promise<Error | null> | null = null;

  /**
   * `batchBytes` must hold one batch of output: the packets of the batch and
   * of its reflections, each grown by a tunnel header, plus record headers.
   * `writeBehind`: room to write behind (writeBatchBehind).
   */
  constructor(
    readonly path: string,
    private readonly core: CaptureExports,
    batchBytes: number,
    writeBehind = false,
  ) {
    try {
      this.fd = openOutput(path);
    } catch (e) {
      throw new CaptureFileError(`cannot create ${path}: ${firstLine(e)}`);
    }
    this.threshold = writeBehind ? WRITE_BEHIND_BYTES : WRITE_BYTES;
    this.capacity = batchBytes + this.threshold;
    const out = core.alloc_buffer((writeBehind ? 2 : 1) * this.capacity);
    if (!out) {
      closeSync(this.fd);
      throw new CaptureFileError("out of memory for the capture output buffer");
    }
    this.regions = writeBehind ? [out, out + this.capacity] : [out];
  }

  /** `w` more bytes were framed after what is gathered (NO_ROOM: they did not fit). */
  private gathered(w: number): void {
    if (w === NO_ROOM) throw new CaptureFileError(`${this.path}: output buffer too small for one batch`);
    this.used += w;
  }

  /** Frame records for the forwarded packets of desc[0..n) (each followed by its reflection in desc2; 0: none) after what is gathered. */
  private gather(desc: number, n: number, desc2: number): void {
    // (under the threshold gathered, the room left holds a batch)
    this.gathered(this.core.cap_emit(desc, n, desc2, this.regions[this.cur] + this.used, this.capacity - this.used));
  }

  private flush(): void {
    const n = this.used;
    this.used = 0; // written, or given up on with the error: close() does not write it again
    const mem = new Uint8Array(this.core.memory.buffer);
    const at = this.regions[this.cur];
    let done = 0;
    try {
      while (done < n) done += writeSync(this.fd, mem, at + done, n - done);
    } catch (e) {
      throw new CaptureFileError(`cannot write ${this.path}: ${firstLine(e)}`);
    }
    this.bytesWritten += n;
  }

  /** The file header, in the format of the input being read (call after the first readBatch). */
  begin(): void {
    this.gathered(this.core.cap_emit_begin(this.regions[this.cur] + this.used, this.capacity - this.used));
  }

  /** Records for the forwarded packets of desc[0..n), each followed by its reflection in desc2 (0: none). */
  writeBatch(desc: number, n: number, desc2 = 0): void {
    this.gather(desc, n, desc2);
    if (this.used >= this.threshold) this.flush();
  }

  /**
   * writeBatch, writing behind: a full region is written on the thread pool
   * while the next batches gather in the other, which waits only if that
   * write is still going when it fills. A writer made without `writeBehind`
   * writes in place, as writeBatch does. Finish with closeBehind().
   */
  async writeBatchBehind(desc: number, n: number, desc2 = 0): Promise<void> {
    this.gather(desc, n, desc2);
    if (this.used < this.threshold) return;
    if (this.regions.length === 1) return this.flush();
    await this.settle(); // the other region is free again
    this.behind = this.writeFrom(this.regions[this.cur], this.used);
    this.cur ^= 1;
    this.used = 0;
  }

  /** Write [at, at + n) of the core's memory on the thread pool. The memory does not move meanwhile (reader.ts). */
  private writeFrom(at: number, n: number): Promise<Error | null> {
    const mem = new Uint8Array(this.core.memory.buffer);
    return new Promise((resolve) => {
      const from = (done: number): void => {
        if (done === n) {
          this.bytesWritten += n;
          resolve(null);
          return;
        }
        write(this.fd, mem, at + done, n - done, null, (err, w) => (err ? resolve(err) : from(done + w)));
      };
      from(0);
    });
  }

  /** Wait for the write in flight; throws the error it failed with. */
  private async settle(): Promise<void> {
    if (!this.behind) return;
    const err = await this.behind;
    this.behind = null;
    if (err) {
      this.used = 0; // output after a failed write is not written at close either
      throw new CaptureFileError(`cannot write ${this.path}: ${firstLine(err)}`);
    }
  }

  /** Write what is gathered and close the file (closed even when that write fails). After writeBatchBehind, closeBehind(). */
  close(): void {
    if (this.behind) throw new Error("CaptureWriter: a write is in flight; closeBehind() waits for it");
    try {
      if (this.used > 0) this.flush();
    } finally {
      closeSync(this.fd);
    }
  }

  /** close() once the write in flight is done (closed even when a write fails). */
  async closeBehind(): Promise<void> {
    try {
      await this.settle();
    } catch (e) {
      closeSync(this.fd);
      throw e;
    }
    this.close();
  }
}
