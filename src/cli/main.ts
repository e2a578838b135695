#!/usr/bin/env node
// The pias command line: a thin shell over the library. Each command is a
// module in ./commands exporting `run(args)`. Errors become one line on
// stderr and a non-zero exit status, never a stack trace.
//
// `npm run build:cli` also bundles this file with the file-to-file commands
// (replay, demo, gen-trace) into one CommonJS file, dist/src/cli/pias.cjs,
// the `pias` the package installs: Node loads it in less than half the time
// it takes to resolve and link those commands' two dozen ES modules. The other
// commands stay ES modules beside it (dist/src/cli/commands), loaded on use.

import { setFlagsFromString } from "node:v8";
import { printable } from "../errors.js";
import { USAGE_ERROR, UsageError } from "./usage.js";

// V8 runs a Wasm function first as Liftoff's quick code and recompiles it with
// TurboFan once it has run about 1.8 MB of code: in a replay of a few thousand
// packets that is at once, and compiling the core's hot path then costs more
// than the whole replay (ppp__example2.pcap: 30-45 ms of pipeline against
// 12-15 without it). With a budget 55 times larger, a short run stays on
// Liftoff and a long one moves to TurboFan a few milliseconds later (a
// 4M-packet replay: no difference). The process is the CLI's own; the
// library leaves V8's flags alone.
setFlagsFromString("--wasm-tiering-budget=100000000");

const USAGE = `usage: pias <command> [options]

commands:
  replay IN --config CONF [--out OUT] [--reflect] [--json] [--batch N]
      replay a pcap/pcapng capture through one proxy; OUT receives what the proxy emits
  demo [--out OUT] [--json]
      replay the bundled demo trace through the demo group (3 targets) with --reflect
  gen-trace --out FILE [--packets N] [--flows N] [--groups N] [--seed S] [--sizes imix|64|1500]
            [--ipv6-share F] [--config-out CONF] [--targets N]
      write a deterministic synthetic trace of clients talking to group TAs (pcap), and
      optionally a matching config
  run --config CONF
      the proxy daemon: serve the configured groups on live traffic (TUN or pcap I/O), and
      with a cluster section take part in PIAS (joins, rendezvous, tunnels between proxies);
      SIGHUP reloads CONF, SIGTERM drains and exits
  join --anycast ADDR --port CONTROL_PORT --group PROTO:ADDR:PORT --address ADDR --target-port PORT
       --key-file FILE [--weight N] [--label L] [--aware]
      join a group as a target through the nearest proxy; keeps the membership alive until
      SIGINT/SIGTERM, then leaves
  discover --anycast ADDR --port CONTROL_PORT --group PROTO:ADDR:PORT --key-file FILE
           [--k N] [--mode random|nearest] [--exclude ADDR:PORT,...] [--timeout MS]
      peer discovery: k members of the group (excluding some), random or nearest, one per line
  overlay-client (--anycast ADDR --port CONTROL_PORT --group udp:ADDR:PORT | --node ADDR:PORT) --key-file FILE
                 --route PREFIX|default ... [--tun NAME] [--mtu N] [--address CIDR] [--timeout MS]
      reach the Internet through an overlay of pias nodes: discover the nearest ones, carry the
      routed destinations' packets to the nearest in a TUN device; SIGTERM prints counts and exits
  config push FILE (--endpoints URL[,URL...] [--prefix /pias] | --config PROXY_CONF) [--dry-run]
      check a fleet configuration (groups, cluster key, joinable groups and their join keys) as
      every proxy will, then write it to the store (etcd) in one transaction; refused before any
      write when it does not pass
  help
      this text`;

interface Command {
  run(args: string[]): void | number | Promise<void | number>;
}

/**
 * Command name -> its module under ./commands, loaded on use (so a command's
 * dependencies load only for it). Static imports, so that the bundler can
 * find them; package.json's build:cli lists those it leaves out.
 */
const COMMANDS: Record<string, () => Promise<Command>> = {
  replay: () => import("./commands/replay.js"),
  demo: () => import("./commands/demo.js"),
  "gen-trace": () => import("./commands/gen-trace.js"),
  run: async () => {
    // before any slow import: a SIGHUP to a starting daemon must not kill it
    (await import("./early-signals.js")).holdSighup();
    return import("./commands/run.js");
  },
  join: () => import("./commands/join.js"),
  discover: () => import("./commands/discover.js"),
  "overlay-client": () => import("./commands/overlay-client.js"),
  config: () => import("./commands/config.js"),
};

const PARSE_ERRORS = new Set([
  "ERR_PARSE_ARGS_UNKNOWN_OPTION",
  "ERR_PARSE_ARGS_INVALID_OPTION_VALUE",
  "ERR_PARSE_ARGS_UNEXPECTED_POSITIONAL",
]);

/** Run the command line; resolves to the exit status. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    if (command === undefined || command === "help" || command === "--help" || command === "-h") {
      console.log(USAGE);
      return command === undefined ? 2 : 0;
    }
    const load = COMMANDS[command];
    if (!load) throw new UsageError(`unknown command "${command}"`);
    return (await (await load()).run(rest)) ?? 0;
  } catch (err) {
    const code = (err as { code?: string })?.code;
    if (code === USAGE_ERROR || (code && PARSE_ERRORS.has(code))) {
      console.error(`pias: ${printable((err as Error).message.split("\n")[0])}\n${USAGE}`);
      return 2;
    }
    const e = err as NodeJS.ErrnoException;
    if (e && typeof e.code === "string" && e.message) {
      console.error(`pias: ${printable(e.message.split("\n")[0])}`);
      return 1;
    }
    console.error(`pias: internal error: ${printable((err as Error)?.message?.split("\n")[0] ?? String(err))}`);
    return 70;
  }
}

main(process.argv.slice(2)).then((status) => {
  process.exitCode = status;
});
