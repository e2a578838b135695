// pias discover --anycast ADDR --port CONTROL_PORT --group PROTO:ADDR:PORT --key-file FILE
//               [--k N] [--mode random|nearest] [--exclude ADDR:PORT,...] [--timeout MS]
//
// Peer discovery (PIAS paper §6.1): ask the nearest proxy for k members of a
// group, excluding some, chosen at random or nearest to the asker. The query
// is signed with the group's join key, like a join. Prints one member per
// line ("ADDR:PORT" and the label, if any); exit 1 when no answer comes.

import { createSocket } from "node:dgram";
import { parseArgs } from "node:util";
import { Authenticator } from "../../control/auth.js";
import { MAX_DISCOVER, type DiscoverMode, type DiscoverReplyMessage } from "../../control/message.js";
import { epKey, parseTransportAddress, sameTa, type Endpoint, type TransportAddress } from "../../control/ta.js";
import { parseEndpoint, tryParseAddress } from "../../net/addr.js";
import { PiasError } from "../../errors.js";
import { UsageError } from "../usage.js";
import { integer, readJoinKey } from "./join.js";

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      anycast: { type: "string" },
      port: { type: "string" },
      group: { type: "string" },
      "key-file": { type: "string" },
      k: { type: "string", default: "3" },
      mode: { type: "string", default: "nearest" },
      exclude: { type: "string", default: "" },
      timeout: { type: "string", default: "2000" },
    },
  });
  if (positionals.length) throw new UsageError(`discover takes no arguments, got ${positionals.join(" ")}`);
  for (const need of ["anycast", "port", "group", "key-file"] as const) if (!values[need]) throw new UsageError(`discover needs --${need}`);
  const anycast = tryParseAddress(values.anycast!);
  if (!anycast) throw new UsageError(`--anycast: ${JSON.stringify(values.anycast)} is not an IP address`);
  const port = integer(values.port, "port", 1, 65535, undefined, "discover");
  const k = integer(values.k, "k", 1, MAX_DISCOVER, undefined, "discover");
  if (values.mode !== "random" && values.mode !== "nearest") throw new UsageError(`--mode must be random or nearest, not ${values.mode}`);
  const timeout = integer(values.timeout, "timeout", 1, 3_600_000, undefined, "discover");
  const ta = parseTransportAddress(values.group!);
  const exclude: Endpoint[] = values.exclude!.split(",").filter(Boolean).map((e) => {
    try {
      const p = parseEndpoint(e);
      return { address: p.bytes, port: p.port };
    } catch (err) {
      throw new UsageError(`--exclude: ${(err as Error).message}`);
    }
  });
  const key = readJoinKey(values["key-file"]!);
  const reply = await askMembers({ anycast: values.anycast!, port, ta, key, k, mode: values.mode as DiscoverMode, exclude, timeoutMs: timeout });
  if (!reply) throw new PiasError("ETIMEDOUT", `no answer from ${values.anycast}:${port} within ${timeout} ms`);
  for (const m of reply.members) console.log(m.label ? `${epKey(m.endpoint)} ${m.label}` : epKey(m.endpoint));
  return 0;
}

export interface DiscoverQuery {
  /** The anycast control address (text) and port. */
  readonly anycast: string;
  readonly port: number;
  readonly ta: TransportAddress;
  /** The group's join key: the query is signed with it. */
  readonly key: Uint8Array;
  readonly k: number;
  readonly mode: DiscoverMode;
  readonly exclude: readonly Endpoint[];
  readonly timeoutMs: number;
}

/** Send one signed DISCOVER to the anycast control address; the reply, or null when none came in time. */
export async function askMembers(q: DiscoverQuery): Promise<DiscoverReplyMessage | null> {
  const auth = new Authenticator({ clusterKey: new Uint8Array(32), groupKey: (t) => (sameTa(t, q.ta) ? q.key : undefined), now: Date.now });
  const frame = auth.seal({ type: "discover", ta: q.ta, k: q.k, mode: q.mode, exclude: q.exclude });
  const socket = createSocket(q.anycast.includes(":") ? "udp6" : "udp4");
  try {
    return await new Promise<DiscoverReplyMessage | null>((resolve, reject) => {
      const timer = setTimeout(() => resolve(null), q.timeoutMs);
      socket.on("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.on("message", (msg) => {
        const opened = auth.open(new Uint8Array(msg));
        if (opened.ok && opened.message.type === "discover-reply" && sameTa(opened.message.ta, q.ta)) {
          clearTimeout(timer);
          resolve(opened.message);
        }
      });
      socket.send(frame, q.port, q.anycast);
    });
  } finally {
    socket.close();
  }
}
