#!/usr/bin/env node
// The pias command line: a thin shell over the library. Errors become one
// line on stderr and a non-zero exit status, never a stack trace.

import { parseArgs } from "node:util";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { DataPlane } from "../core/dataplane.js";
import { loadConfig } from "../config/load.js";
import { replay } from "../replay/replay.js";
import { formatReport } from "./report.js";
import { generateTrace, traceConfig, type TraceSizes } from "../trace/generate.js";
import { writeFileSync } from "node:fs";
import { PiasError } from "../errors.js";

const USAGE = `usage: pias <command> [options]

commands:
  replay IN --config CONF [--out OUT] [--reflect] [--json] [--batch N]
      replay a pcap/pcapng capture through one proxy; OUT receives what the proxy emits
  demo [--out OUT] [--json]
      replay the bundled demo trace through the demo group (3 targets) with --reflect
  gen-trace --out FILE [--packets N] [--flows N] [--groups N] [--seed S] [--sizes imix|64|1500]
            [--ipv6-share F] [--config-out CONF]
      write a deterministic synthetic trace of clients talking to group TAs (pcap), and
      optionally a matching config
  help
      this text`;

class UsageError extends Error {}

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, "utf8")).name === "pias") return dir;
    dir = dirname(dir);
  }
  throw new PiasError("ENOROOT", "cannot find the pias package directory");
}

function runReplay(args: string[]): void {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      config: { type: "string", short: "c" },
      out: { type: "string", short: "o" },
      reflect: { type: "boolean", default: false },
      json: { type: "boolean", default: false },
      batch: { type: "string" },
    },
  });
  if (positionals.length !== 1) throw new UsageError("replay needs exactly one input file");
  if (!values.config) throw new UsageError("replay needs --config CONF");
  const batch = values.batch === undefined ? undefined : Number(values.batch);
  if (batch !== undefined && (!Number.isInteger(batch) || batch < 1 || batch > 65536)) {
    throw new UsageError(`--batch must be an integer from 1 to 65536, not ${values.batch}`);
  }
  const dp = DataPlane.fromConfig(loadConfig(values.config));
  const report = replay(dp, { input: positionals[0], output: values.out, reflect: values.reflect, batch });
  console.log(values.json ? JSON.stringify(report) : formatReport(report));
}

function runDemo(args: string[]): void {
  const { values } = parseArgs({
    args,
    options: { out: { type: "string", short: "o" }, json: { type: "boolean", default: false } },
  });
  const root = packageRoot();
  const config = join(root, "demo", "config.yaml");
  const input = join(root, "demo", "demo.pcap");
  const output = values.out ?? join(tmpdir(), "pias-demo-out.pcap");
  const dp = DataPlane.fromConfig(loadConfig(config));
  const report = replay(dp, { input, output, reflect: true });
  if (values.json) {
    console.log(JSON.stringify(report));
    return;
  }
  console.log(`demo: ${config}\n`);
  console.log(formatReport(report));
  console.log(`\nopen ${output} in Wireshark or run: tshark -r ${output}`);
}

function numberOption(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, not "${v}"`);
  return n;
}

function runGenTrace(args: string[]): void {
  const { values, positionals } = parseArgs({
    args,
    options: {
      out: { type: "string", short: "o" },
      packets: { type: "string" },
      flows: { type: "string" },
      groups: { type: "string" },
      seed: { type: "string" },
      sizes: { type: "string" },
      "ipv6-share": { type: "string" },
      "config-out": { type: "string" },
    },
  });
  if (positionals.length) throw new UsageError(`gen-trace takes no positional arguments`);
  if (!values.out) throw new UsageError("gen-trace needs --out FILE");
  const options = {
    packets: numberOption("packets", values.packets),
    flows: numberOption("flows", values.flows),
    groups: numberOption("groups", values.groups),
    seed: numberOption("seed", values.seed),
    sizes: values.sizes as TraceSizes | undefined,
    ipv6Share: numberOption("ipv6-share", values["ipv6-share"]),
  };
  const tty = process.stderr.isTTY;
  const bar = (done: number, total: number): void => {
    if (!tty) return;
    const width = 40;
    const f = total ? done / total : 1;
    const full = Math.round(f * width);
    process.stderr.write(`\r[${"#".repeat(full)}${".".repeat(width - full)}] ${(f * 100).toFixed(0).padStart(3)}% ${done}/${total}`);
    if (done === total) process.stderr.write("\n");
  };
  const summary = generateTrace({ out: values.out, ...options }, bar);
  if (values["config-out"]) writeFileSync(values["config-out"], JSON.stringify(traceConfig(options), null, 2) + "\n");
  console.log(`${summary.out}: ${summary.packets} packets, ${summary.flows} flows (${summary.ipv6Flows} IPv6), ` +
    `${summary.groups} groups, ${summary.bytes} bytes in ${summary.seconds.toFixed(2)} s`);
}

export function main(argv: string[]): number {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case "replay":
        runReplay(rest);
        return 0;
      case "demo":
        runDemo(rest);
        return 0;
      case "gen-trace":
        runGenTrace(rest);
        return 0;
      case undefined:
      case "help":
      case "--help":
      case "-h":
        console.log(USAGE);
        return command === undefined ? 2 : 0;
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" ||
      (err as { code?: string }).code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" ||
      (err as { code?: string }).code === "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL") {
      console.error(`pias: ${(err as Error).message.split("\n")[0]}\n${USAGE}`);
      return 2;
    }
    if (err instanceof PiasError) {
      console.error(`pias: ${err.message}`);
      return 1;
    }
    const e = err as NodeJS.ErrnoException;
    if (e && typeof e.code === "string" && e.message) {
      console.error(`pias: ${e.message.split("\n")[0]}`);
      return 1;
    }
    console.error(`pias: internal error: ${(err as Error)?.message?.split("\n")[0] ?? String(err)}`);
    return 70;
  }
}

process.exitCode = main(process.argv.slice(2));
