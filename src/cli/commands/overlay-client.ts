// pias overlay-client (--anycast ADDR --port CONTROL_PORT --group udp:ADDR:PORT | --node ADDR:PORT)
//                     --key-file FILE [--route PREFIX|default ...] [--tun NAME] [--mtu N] [--address CIDR] [--timeout MS]
//
// Reach the Internet through an overlay of pias nodes (README "Reaching an
// overlay", paper §6.2): find one or two nearby nodes by peer discovery on the
// overlay's group (signed with the overlay key, sent to the anycast control
// address: the nearest proxy answers), then carry the routed destinations'
// packets to the nearest node in a TUN device (src/overlay/client.ts). Logs
// one line when up; SIGINT/SIGTERM print the counts as JSON and exit 0.

import { parseArgs } from "node:util";
import { OverlayClient } from "../../overlay/client.js";
import { epKey, parseControlEndpoint, parseTransportAddress, type Endpoint, type TransportAddress } from "../../control/ta.js";
import { parsePrefix, tryParseAddress } from "../../net/addr.js";
import { PiasError } from "../../errors.js";
import { UsageError } from "../usage.js";
import { askMembers } from "./discover.js";
import { integer, readJoinKey } from "./join.js";

const DISCOVERY_TRIES = 5;

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      anycast: { type: "string" },
      port: { type: "string" },
      group: { type: "string" },
      node: { type: "string" },
      "key-file": { type: "string" },
      route: { type: "string", multiple: true, default: [] },
      tun: { type: "string", default: "povl%d" },
      mtu: { type: "string", default: "1400" },
      address: { type: "string" },
      timeout: { type: "string", default: "2000" },
    },
  });
  if (positionals.length) throw new UsageError(`overlay-client takes no arguments, got ${positionals.join(" ")}`);
  if (!values["key-file"]) throw new UsageError("overlay-client needs --key-file");
  if (!values.node && !(values.anycast && values.port && values.group)) throw new UsageError("overlay-client needs --node, or --anycast, --port and --group to discover one");
  const routes = values.route!;
  if (routes.length === 0) throw new UsageError("overlay-client needs at least one --route PREFIX (or --route default)");
  for (const r of routes) {
    if (r === "default") continue;
    try {
      parsePrefix(r);
    } catch (err) {
      throw new UsageError(`--route: ${(err as Error).message}`);
    }
  }
  const mtu = integer(values.mtu, "mtu", 576, 65483, undefined, "overlay-client");
  const timeout = integer(values.timeout, "timeout", 1, 3_600_000, undefined, "overlay-client");
  const key = readJoinKey(values["key-file"]!);
  const log = (line: string): void => console.log(`pias overlay-client: ${line}`);

  let nodes: { endpoint: Endpoint; label: string | null }[];
  if (values.node) {
    nodes = [{ endpoint: endpointArg(values.node), label: null }];
  } else {
    if (!tryParseAddress(values.anycast!)) throw new UsageError(`--anycast: ${JSON.stringify(values.anycast)} is not an IP address`);
    let ta: TransportAddress;
    try {
      ta = parseTransportAddress(values.group!);
    } catch (err) {
      throw new UsageError(`--group: ${(err as Error).message}`);
    }
    const port = integer(values.port, "port", 1, 65535, undefined, "overlay-client");
    nodes = [];
    for (let i = 0; i < DISCOVERY_TRIES && nodes.length === 0; i++) {
      const reply = await askMembers({ anycast: values.anycast!, port, ta, key, k: 2, mode: "nearest", exclude: [], timeoutMs: timeout });
      nodes = reply?.members.map((m) => ({ endpoint: m.endpoint, label: m.label })) ?? [];
    }
    if (nodes.length === 0) throw new PiasError("ETIMEDOUT", `no overlay node answered through ${values.anycast}:${port} (${DISCOVERY_TRIES} tries of ${timeout} ms; is the key right?)`);
  }
  const [local, backup] = nodes;
  const client = await OverlayClient.open({ key, node: local.endpoint, tunName: values.tun!, mtu, routes, address: values.address });
  const name = (n: { endpoint: Endpoint; label: string | null }): string => `${n.label ?? "node"} (${epKey(n.endpoint)})`;
  log(`up: local node ${name(local)}${backup ? `, next nearest ${name(backup)}` : ""}; ${client.tun.name} mtu ${mtu}; routes ${routes.join(", ")}`);

  return await new Promise<number>((resolve) => {
    const stop = (): void => {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
      client.close();
      console.log(JSON.stringify(client.stats));
      resolve(0);
    };
    process.on("SIGINT", stop);
    process.on("SIGTERM", stop);
  });
}

function endpointArg(text: string): Endpoint {
  try {
    return parseControlEndpoint(text);
  } catch (err) {
    throw new UsageError(`--node: ${(err as Error).message}`);
  }
}
