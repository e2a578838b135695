// pias demo [--out OUT] [--json]
import { parseArgs } from "node:util";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { tmpdir } from "node:os";
import { DataPlane } from "../../core/dataplane.js";
import { loadConfig } from "../../config/load.js";
import { replay, replayCapacity } from "../../replay/replay.js";
import { formatReport } from "../report.js";
import { PiasError } from "../../errors.js";

function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, "utf8")).name === "pias") return dir;
    dir = dirname(dir);
  }
  throw new PiasError("ENOROOT", "cannot find the pias package directory");
}

export async function run(args: string[]): Promise<void> {
  const { values } = parseArgs({
    args,
    options: { out: { type: "string", short: "o" }, json: { type: "boolean", default: false } },
  });
  const root = packageRoot();
  const config = join(root, "demo", "config.yaml");
  const input = join(root, "demo", "demo.pcap");
  const output = values.out ?? join(tmpdir(), "pias-demo-out.pcap");
  const loaded = loadConfig(config);
  const dp = DataPlane.fromConfig(loaded, { capacity: replayCapacity(loaded.capacity, input) });
  const report = await replay(dp, { input, output, reflect: true });
  if (values.json) {
    console.log(JSON.stringify(report));
    return;
  }
  console.log(`demo: ${config}\n`);
  console.log(formatReport(report));
  console.log(`\nopen ${output} in Wireshark or run: tshark -r ${output}`);
}
