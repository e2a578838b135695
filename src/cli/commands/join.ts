// pias join --anycast ADDR --port CONTROL_PORT --group PROTO:ADDR:PORT --address ADDR
//           --target-port PORT --key-file FILE [--weight N] [--label L] [--aware]
//
// Join a group as a target: a thin shell over the Joiner on a UDP socket.
// JOIN goes to the anycast control address until a proxy acknowledges, then
// KEEPALIVEs follow at the interval the proxy asked for (to the anycast
// address, so the nearest proxy always hears them); SIGINT or SIGTERM sends
// LEAVE and exits 0. One log line per state change.
import { createSocket, type Socket } from "node:dgram";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { Joiner, type JoinerEvent } from "../../control/joiner.js";
import { MAX_LABEL_BYTES } from "../../control/message.js";
import { epKey, formatTransportAddress, parseTransportAddress, taKey, TransportAddressError, type Endpoint } from "../../control/ta.js";
import { formatAddress, tryParseAddress } from "../../net/addr.js";
import { PiasError } from "../../errors.js";
import { UsageError } from "../usage.js";

export const USAGE = `join --anycast ADDR --port CONTROL_PORT --group PROTO:ADDR:PORT --address ADDR --target-port PORT
       --key-file FILE [--weight N] [--label L] [--aware]
    join a group as a target (legacy, or PIAS-aware with --aware) through the nearest proxy;
    keeps the membership alive until SIGINT/SIGTERM, then leaves. FILE holds the group's join
    key: hex (32-128 digits) or at least 16 raw bytes`;

/** The group's join key from a file: hex text (32..128 digits) or the raw bytes (16 or more). */
export function readJoinKey(path: string): Uint8Array {
  const raw = readFileSync(path);
  const text = raw.toString("latin1").trim();
  if (/^[0-9a-fA-F]+$/.test(text) && text.length % 2 === 0 && text.length >= 32 && text.length <= 128) return Uint8Array.from(Buffer.from(text, "hex"));
  if (raw.length >= 16) return new Uint8Array(raw);
  throw new PiasError("EKEY", `${path}: a join key is 32-128 hex digits or at least 16 raw bytes, found ${raw.length} bytes`);
}

/** An integer option in [min, max]; `fallback` when absent (required when there is none). */
export function integer(text: string | undefined, name: string, min: number, max: number, fallback?: number, command = "join"): number {
  if (text === undefined) {
    if (fallback === undefined) throw new UsageError(`${command} needs --${name}`);
    return fallback;
  }
  if (!/^[0-9]+$/.test(text) || Number(text) < min || Number(text) > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, not ${text}`);
  return Number(text);
}

function describe(ev: JoinerEvent, anycast: Endpoint): string {
  switch (ev.state) {
    case "joining":
      return `joining via ${epKey(anycast)}`;
    case "joined":
      return `${ev.moved ? "moved to" : "joined via"} proxy ${ev.jap?.id} (${ev.jap ? epKey(ev.jap.endpoint) : "?"}), keepalive every ${ev.keepaliveIntervalS} s`;
    case "rejected":
      return `rejected by proxy ${ev.jap?.id ?? "?"}: ${ev.reason}; retrying in ${Math.round((ev.retryInMs ?? 0) / 1000)} s`;
    case "stopped":
      return "left the group";
    default:
      return ev.state;
  }
}

export async function run(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      anycast: { type: "string" },
      port: { type: "string" },
      group: { type: "string" },
      address: { type: "string" },
      "target-port": { type: "string" },
      "key-file": { type: "string" },
      weight: { type: "string" },
      label: { type: "string" },
      aware: { type: "boolean", default: false },
    },
  });
  if (positionals.length) throw new UsageError(`join takes no positional arguments (got ${positionals[0]})`);
  for (const name of ["anycast", "port", "group", "address", "key-file"] as const) if (!values[name]) throw new UsageError(`join needs --${name}`);
  const anycastAddr = tryParseAddress(values.anycast!);
  if (!anycastAddr) throw new UsageError(`--anycast ${values.anycast} is not an IPv4 or IPv6 address`);
  const anycast: Endpoint = { address: anycastAddr.bytes, port: integer(values.port, "port", 1, 65535) };
  let ta;
  try {
    ta = parseTransportAddress(values.group!);
  } catch (err) {
    if (err instanceof TransportAddressError) throw new UsageError(`--group: ${err.message}`);
    throw err;
  }
  const addr = tryParseAddress(values.address!);
  if (!addr) throw new UsageError(`--address ${values.address} is not an IPv4 or IPv6 address`);
  if (addr.bytes.length !== ta.address.length) throw new UsageError(`--address ${values.address} and the group ${formatTransportAddress(ta)} are of different address families`);
  const targetPort = ta.protocol === "icmp" ? integer(values["target-port"], "target-port", 0, 0, 0) : integer(values["target-port"], "target-port", 0, 65535);
  const weight = integer(values.weight, "weight", 1, 65535, 1);
  const label = values.label ?? null;
  // eslint-disable-next-line no-control-regex
  if (label !== null && (label === "" || /[\u0000-\u001f\u007f]/.test(label) || Buffer.byteLength(label) > MAX_LABEL_BYTES)) {
    throw new UsageError(`--label must be 1-${MAX_LABEL_BYTES} bytes of text without control characters`);
  }
  const key = readJoinKey(values["key-file"]!);
  const target = { endpoint: { address: addr.bytes, port: targetPort }, weight, label, aware: values.aware ?? false };

  const socket: Socket = createSocket(anycastAddr.family === 4 ? "udp4" : "udp6");
  const log = (line: string): void => console.log(`pias join: ${taKey(ta)} ${epKey(target.endpoint)}: ${line}`);
  let inFlight = 0;
  let drained: (() => void) | undefined;
  const joiner = new Joiner({
    ta,
    target,
    key,
    anycast,
    now: Date.now,
    send: (to, bytes) => {
      inFlight++;
      socket.send(bytes, to.port, formatAddress(to.address), (err) => {
        inFlight--;
        if (err) log(`send to ${epKey(to)} failed: ${err.message}`);
        if (inFlight === 0) drained?.();
      });
    },
    onState: (ev) => log(describe(ev, anycast)),
  });

  return await new Promise<number>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = (status: number): void => {
      clearInterval(timer);
      process.off("SIGINT", leave);
      process.off("SIGTERM", leave);
      socket.close();
      resolve(status);
    };
    function leave(): void {
      joiner.stop();
      if (inFlight === 0) finish(0);
      else drained = () => finish(0);
    }
    socket.on("error", (err) => {
      clearInterval(timer);
      process.off("SIGINT", leave);
      process.off("SIGTERM", leave);
      socket.close();
      reject(err);
    });
    socket.on("message", (msg, rinfo) => {
      const from = tryParseAddress(rinfo.address.replace(/%.*$/, ""));
      if (from) joiner.receive({ address: from.bytes, port: rinfo.port }, new Uint8Array(msg.buffer, msg.byteOffset, msg.length));
    });
    process.on("SIGINT", leave);
    process.on("SIGTERM", leave);
    socket.bind(0, () => {
      joiner.start();
      // Retries are 0.25 s and up, keepalives whole seconds: a 50 ms tick is precise enough.
      timer = setInterval(() => joiner.tick(), 50);
    });
  });
}
