// pias gen-trace --out FILE [--packets N] [--flows N] [--groups N] [--seed S] [--sizes imix|64|1500]
//                [--ipv6-share F] [--config-out CONF] [--targets N]
import { parseArgs } from "node:util";
import { writeFileSync } from "node:fs";
import { generateTrace, traceConfig, type TraceSizes } from "../../trace/generate.js";
import { UsageError } from "../usage.js";
import { ProgressBar } from "../progress.js";

function numberOption(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n)) throw new UsageError(`--${name} must be a number, not "${v}"`);
  return n;
}

export function run(args: string[]): void {
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
      targets: { type: "string" },
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
  const progress = new ProgressBar();
  const summary = generateTrace({ out: values.out, ...options }, (done, total) => progress.update(done, total));
  progress.finish();
  if (values["config-out"]) {
    // One proxy address gives a target port about 64k NAT bindings: by default
    // enough targets that every group's flows fit with room to spare.
    const targets = numberOption("targets", values.targets) ?? Math.max(3, Math.ceil((summary.flows) / 30000));
    writeFileSync(values["config-out"], JSON.stringify(traceConfig(options, targets), null, 2) + "\n");
  }
  console.log(`${summary.out}: ${summary.packets} packets, ${summary.flows} flows (${summary.ipv6Flows} IPv6), ` +
    `${summary.groups} groups, ${summary.bytes} bytes in ${summary.seconds.toFixed(2)} s`);
}
