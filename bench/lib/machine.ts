// What a benchmark figure was measured on, written beside it in
// bench/results/*.json: the machine (CPU model, cores, memory, kernel, Node),
// the commit of the code measured (with "-dirty" for uncommitted changes) and
// the load average, since other processes may share the CPU.

import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg, release, totalmem } from "node:os";

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  kernel: string;
  commit: string;
  /** 1, 5 and 15 minute load averages when the run started (see loadAtEnd for the end). */
  loadAverage: number[];
}

/** The commit HEAD names, "-dirty" when the worktree has changes, "unknown" outside git. */
export function commit(): string {
  const head = spawnSync("git", ["rev-parse", "HEAD"], { encoding: "utf8" });
  if (head.status !== 0) return "unknown";
  const dirty = spawnSync("git", ["status", "--porcelain", "--untracked-files=no"], { encoding: "utf8" });
  return `${head.stdout.trim()}${dirty.stdout.trim() ? "-dirty" : ""}`;
}

export function machine(): Machine {
  let cpu = cpus()[0]?.model ?? "unknown";
  try {
    cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpu;
  } catch {
    // not Linux
  }
  return {
    cpu,
    cores: cpus().length,
    memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
    node: process.version,
    kernel: release(),
    commit: commit(),
    loadAverage: load(),
  };
}

/** The load average now (1, 5, 15 minutes), two decimals. */
export function load(): number[] {
  return loadavg().map((x) => +x.toFixed(2));
}
