// What the tests of huge pages need to know about this machine and process.

import { readFileSync } from "node:fs";
import { adviseHugePages } from "../../src/core/hugepages.js";

const thp = ((): string => {
  try {
    return readFileSync("/sys/kernel/mm/transparent_hugepage/enabled", "utf8");
  } catch {
    return "";
  }
})();
/** Transparent huge pages are on for memory that asks for them. */
export const thpOn = thp.includes("[madvise]") || thp.includes("[always]");
/** The pias_memory addon is built (npm rebuild needs g++ and make). */
export const addonBuilt = adviseHugePages(new WebAssembly.Memory({ initial: 64 }).buffer).bytes !== 0;

/** Bytes of this process's anonymous memory on transparent huge pages (AnonHugePages of /proc/self/smaps_rollup). */
export function anonHugeBytes(): number {
  const m = /^AnonHugePages:\s+(\d+) kB/m.exec(readFileSync("/proc/self/smaps_rollup", "utf8"));
  return m ? Number(m[1]) * 1024 : 0;
}
