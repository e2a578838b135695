// What bench/attack.ts runs inside a namespace (ip netns exec ... node
// --import tsx bench/lib/attack-probe.ts MODE JSON): one JSON line of
// results on stdout when done.
//
//   http  {host, port, everyMs, seconds, timeoutMs}: a new TCP connection and
//         an HTTP/1.0 GET every everyMs for `seconds`; per request: start (ms
//         since the probe began), ok, ms to the end of the answer.
//   joins {anycast, port, group: "tcp:A:P", keyHex, rate, count, sources,
//         sourcePrefix, targetPrefix, waitMs}: `count` signed JOINs at `rate`
//         per second from `sources` addresses of sourcePrefix (a /16 routed
//         locally in this namespace), each for a new target of targetPrefix;
//         then waits waitMs for JOIN_ACKs and counts them by outcome.

import { createSocket, type Socket } from "node:dgram";
import { connect } from "node:net";
import { Authenticator } from "../../src/control/auth.js";
import { parseTransportAddress, type TransportAddress } from "../../src/control/ta.js";

interface HttpArgs { host: string; port: number; everyMs: number; seconds: number; timeoutMs: number }
interface JoinArgs {
  anycast: string; port: number; group: string; keyHex: string; rate: number; count: number; sources: number;
  sourcePrefix: string; targetPrefix: string; waitMs: number;
}

function request(host: string, port: number, timeoutMs: number): Promise<{ ok: boolean; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let got = "";
    let done = false;
    const finish = (ok: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ ok, ms: performance.now() - t0 });
    };
    const s = connect({ host, port }, () => s.write("GET / HTTP/1.0\r\n\r\n"));
    const timer = setTimeout(() => finish(false), timeoutMs);
    s.on("data", (b) => (got += b.toString("latin1")));
    s.on("end", () => finish(/^HTTP\/1\.[01] 200/.test(got)));
    s.on("error", () => finish(false));
  });
}

async function http(a: HttpArgs): Promise<void> {
  const t0 = performance.now();
  const pending: Promise<void>[] = [];
  const results: { at: number; ok: boolean; ms: number }[] = [];
  while (performance.now() - t0 < a.seconds * 1000) {
    const at = performance.now() - t0;
    pending.push(request(a.host, a.port, a.timeoutMs).then((r) => void results.push({ at: Math.round(at), ok: r.ok, ms: Math.round(r.ms * 10) / 10 })));
    await new Promise((r) => setTimeout(r, a.everyMs));
  }
  await Promise.all(pending);
  results.sort((x, y) => x.at - y.at);
  console.log(JSON.stringify({ requests: results }));
}

async function joins(a: JoinArgs): Promise<void> {
  const ta: TransportAddress = parseTransportAddress(a.group);
  const key = Uint8Array.from(Buffer.from(a.keyHex, "hex"));
  const signer = new Authenticator({ groupKey: () => key, now: Date.now });
  const opener = new Authenticator({ groupKey: () => key, now: Date.now, replayCapacity: 1 << 16 });
  const [s0, s1] = a.sourcePrefix.split(".").map(Number);
  const [t0, t1] = a.targetPrefix.split(".").map(Number);
  const acks = { accepted: 0, refused: {} as Record<string, number> };
  const sockets: Socket[] = [];
  for (let i = 0; i < a.sources; i++) {
    const sock = createSocket("udp4");
    sock.on("message", (msg) => {
      const o = opener.open(new Uint8Array(msg));
      if (!o.ok || o.message.type !== "join-ack") return;
      if (o.message.accepted) acks.accepted++;
      else acks.refused[o.message.reason] = (acks.refused[o.message.reason] ?? 0) + 1;
    });
    await new Promise<void>((r) => sock.bind({ address: `${s0}.${s1}.${1 + (i >> 8)}.${i & 255}`, port: 40000 }, r));
    sockets.push(sock);
  }
  const start = performance.now();
  for (let n = 0; n < a.count; n++) {
    const due = start + (n * 1000) / a.rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const target = { endpoint: { address: Uint8Array.of(t0, t1, (n >> 8) & 255, n & 255), port: 8080 }, weight: 1, label: null, aware: false };
    const frame = signer.seal({ type: "join", ta, target });
    sockets[n % sockets.length].send(frame, a.port, a.anycast);
  }
  const sentSeconds = (performance.now() - start) / 1000;
  await new Promise((r) => setTimeout(r, a.waitMs));
  for (const s of sockets) s.close();
  console.log(JSON.stringify({ sent: a.count, sentSeconds: Math.round(sentSeconds * 100) / 100, ...acks }));
}

const [mode, json] = process.argv.slice(2);
const args = JSON.parse(json ?? "{}");
(mode === "http" ? http(args) : mode === "joins" ? joins(args) : Promise.reject(new Error(`unknown mode ${mode}`))).catch((e: Error) => {
  console.error(`attack-probe: ${e.message}`);
  process.exitCode = 1;
});
