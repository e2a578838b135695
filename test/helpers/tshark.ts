// tshark, the independent dissector the tests compare against.
import { execFileSync } from "node:child_process";

let available: boolean | undefined;

export function hasTshark(): boolean {
  if (available === undefined) {
    try {
      execFileSync("tshark", ["--version"], { stdio: "ignore" });
      available = true;
    } catch {
      available = false;
    }
  }
  return available;
}

export const SKIP_NO_TSHARK = "tshark is not installed (Debian package tshark; .ci/run installs it)";

/** Checksum validation on for every protocol tshark can check. */
export const CHECKSUM_PREFS = ["ip.check_checksum:TRUE", "tcp.check_checksum:TRUE", "udp.check_checksum:TRUE"];

/** One row per frame, one column per field (multiple occurrences joined by ","). */
export function tsharkFields(file: string, fields: readonly string[], prefs: readonly string[] = []): string[][] {
  const args = ["-r", file, "-n", "-T", "fields", "-E", "separator=\t", "-E", "occurrence=a", "-E", "aggregator=,"];
  for (const p of prefs) args.push("-o", p);
  for (const f of fields) args.push("-e", f);
  const out = execFileSync("tshark", args, { encoding: "utf8", maxBuffer: 1 << 30, stdio: ["ignore", "pipe", "ignore"] });
  return out.split("\n").filter((l, i, a) => l !== "" || i < a.length - 1).map((l) => l.split("\t"));
}
