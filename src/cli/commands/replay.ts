// pias replay IN --config CONF [--out OUT] [--reflect] [--json] [--batch N]
import { parseArgs } from "node:util";
import { DataPlane } from "../../core/dataplane.js";
import { loadConfig } from "../../config/load.js";
import { replay, replayCapacity } from "../../replay/replay.js";
import { formatReport, num } from "../report.js";
import { UsageError } from "../usage.js";
import { ProgressBar } from "../progress.js";

export async function run(args: string[]): Promise<void> {
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
  const config = loadConfig(values.config);
  const dp = DataPlane.fromConfig(config, { capacity: replayCapacity(config.capacity, positionals[0]) });
  const progress = new ProgressBar(1000);
  const mb = (n: number): string => (n / 1e6).toFixed(1);
  const report = await replay(dp, {
    input: positionals[0], output: values.out, reflect: values.reflect, batch,
    onProgress: (read, size, packets) => progress.update(read, size, () => `${mb(read)}/${mb(size)} MB, ${num(packets)} packets`),
  });
  progress.finish();
  console.log(values.json ? JSON.stringify(report) : formatReport(report));
}
