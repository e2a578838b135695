// Where a figure was measured, for the raw results every benchmark writes:
// the machine (uname -a, CPU model), the commit, and the load the other
// processes put on it while it ran (figures from a loaded machine are noted as such).

import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { cpus, loadavg } from "node:os";

const run = (cmd: string, args: string[]): string | null => {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim();
  } catch {
    return null;
  }
};

export function machine(): Record<string, unknown> {
  let cpu = cpus()[0]?.model ?? "unknown";
  try {
    cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? cpu;
  } catch {
    // not Linux
  }
  const dirty = run("git", ["status", "--porcelain", "--untracked-files=no"]);
  return {
    uname: run("uname", ["-a"]),
    cpu,
    cores: cpus().length,
    node: process.version,
    commit: run("git", ["rev-parse", "HEAD"]),
    dirty: dirty === null ? null : dirty !== "",
    loadavg: loadavg().map((x) => +x.toFixed(2)),
  };
}
