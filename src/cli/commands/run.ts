// pias run --config CONF: the proxy daemon. Logs JSON lines (pino) on stdout.
// SIGHUP reloads the config; SIGTERM and SIGINT drain and exit.

import { parseArgs } from "node:util";
import { Daemon } from "../../daemon/daemon.js";
import { releaseSighup } from "../early-signals.js";
import { UsageError } from "../usage.js";

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { config: { type: "string", short: "c" } },
  });
  if (positionals.length) throw new UsageError(`run takes no arguments, got ${positionals.join(" ")}`);
  if (!values.config) throw new UsageError("run needs --config CONF");
  // errors (a bad config, no root for the TUN device, a busy metrics port) are one line on stderr
  const daemon = await Daemon.start({ configPath: values.config });
  const code = await new Promise<number>((resolve) => {
    process.on("SIGHUP", () => daemon.reload());
    // a SIGHUP during start-up was held (main.ts): the file may have changed after it was read
    if (releaseSighup() > 0) daemon.reload();
    const stop = (signal: string): void => {
      daemon.log.info({ signal }, "stopping");
      daemon.stop().then(() => resolve(0), (err: Error) => {
        daemon.log.error({ err: err.message }, "stop failed");
        resolve(1);
      });
    };
    process.once("SIGTERM", () => stop("SIGTERM"));
    process.once("SIGINT", () => stop("SIGINT"));
  });
  // stopped: exit even if a library left a handle open (node_pcap's poll does)
  setTimeout(() => process.exit(code), 100).unref();
  return code;
}
