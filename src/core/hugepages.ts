// Transparent huge pages for the core's tables, through the small native
// addon native/memory.cc (built by npm at install, like the TUN addon). The
// flow table and its index are read at random: with 4 KiB pages nearly every
// packet of a large table misses the TLB twice; with 2 MiB pages they fit in
// it (bench:scale, README "Scale").
//
// Optional by design: where the addon is not built (no compiler at install),
// or the kernel refuses, the tables simply keep 4 KiB pages. Never throws.

import { createRequire } from "node:module";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

interface Addon {
  /** [first advised address, bytes advised] or [0, -errno]. */
  adviseHugePages(buffer: ArrayBuffer, from?: number): [number, number];
}

const ADDON = join("build", "Release", "pias_memory.node");
let addon: Addon | null | undefined;

function load(): Addon | null {
  if (addon !== undefined) return addon;
  addon = null;
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, ADDON);
    if (existsSync(candidate)) {
      try {
        addon = createRequire(import.meta.url)(candidate) as Addon;
      } catch {
        // built for another Node: 4 KiB pages
      }
      break;
    }
    if (dirname(dir) === dir) break;
  }
  return addon;
}

/** What adviseHugePages() did. */
export interface HugePageAdvice {
  /** First byte advised (an address in the process, for tests that look it up in /proc/self/smaps). */
  start: number;
  /** Bytes advised; 0 without the addon or when the buffer holds no whole 2 MiB page, -errno when the kernel refused. */
  bytes: number;
}

/**
 * Ask for huge pages over the whole 2 MiB pages of `buffer` from byte `from`
 * on (the core's linear memory as it is now: call it once the tables, or the
 * buffers, are reserved and before they are touched).
 */
export function adviseHugePages(buffer: ArrayBuffer, from = 0): HugePageAdvice {
  const a = load();
  if (!a) return { start: 0, bytes: 0 };
  const [start, bytes] = a.adviseHugePages(buffer, from);
  return { start, bytes };
}
