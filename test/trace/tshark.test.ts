// Generated traces as Wireshark sees them: tshark reads every packet, finds
// every IPv4, TCP, UDP, ICMP and ICMPv6 checksum good (with checksum
// verification switched on), and counts the flows, IPv6 share, TCP SYN/FIN
// and frame sizes the generator promises. Skipped when tshark is not installed.

import { test, describe, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { execFileSync, spawnSync } from "node:child_process";
import { generateTrace, type TraceOptions, type TraceSizes } from "../../src/trace/generate.js";

const hasTshark = spawnSync("tshark", ["--version"], { stdio: "ignore" }).status === 0;
const dir = mkdtempSync(join(tmpdir(), "pias-trace-tshark-"));
after(() => rmSync(dir, { recursive: true, force: true }));

const FIELDS = [
  "frame.len",
  "ip.checksum.status",
  "tcp.checksum.status",
  "udp.checksum.status",
  "icmp.checksum.status",
  "icmpv6.checksum.status",
  "ip.src",
  "ipv6.src",
  "ip.dst",
  "ipv6.dst",
  "ip.proto",
  "ipv6.nxt",
  "tcp.srcport",
  "tcp.dstport",
  "udp.srcport",
  "udp.dstport",
  "icmp.ident",
  "icmpv6.echo.identifier",
  "tcp.flags.syn",
  "tcp.flags.fin",
] as const;
type Field = (typeof FIELDS)[number];
type Row = Record<Field, string>;

function tshark(path: string): Row[] {
  const out = execFileSync(
    "tshark",
    [
      "-r", path, "-n",
      "-o", "ip.check_checksum:TRUE",
      "-o", "tcp.check_checksum:TRUE",
      "-o", "udp.check_checksum:TRUE",
      "-T", "fields", "-E", "separator=|", "-E", "occurrence=f",
      ...FIELDS.flatMap((f) => ["-e", f]),
    ],
    { encoding: "utf8", maxBuffer: 1 << 28, stdio: ["ignore", "pipe", "ignore"] },
  );
  return out
    .split("\n")
    .filter((l) => l !== "")
    .map((line) => {
      const cols = line.split("|");
      return Object.fromEntries(FIELDS.map((f, i) => [f, cols[i] ?? ""])) as Row;
    });
}

const GOOD = "1"; // checksum status: 0 bad, 1 good, 2 unverified
/** Boolean fields print as 1/0, or True/False in newer tshark. */
const set = (v: string): boolean => v === "1" || v === "True";

function flowKey(r: Row): string {
  const v6 = r["ipv6.src"] !== "";
  const proto = v6 ? r["ipv6.nxt"] : r["ip.proto"];
  const src = v6 ? r["ipv6.src"] : r["ip.src"];
  const dst = v6 ? r["ipv6.dst"] : r["ip.dst"];
  const sport = r["tcp.srcport"] || r["udp.srcport"] || r["icmp.ident"] || r["icmpv6.echo.identifier"];
  const dport = r["tcp.dstport"] || r["udp.dstport"] || "0";
  return `${proto} ${src} ${sport} ${dst} ${dport}`;
}

describe("generated traces in tshark", { skip: hasTshark ? false : "tshark is not installed" }, () => {
  const base: TraceOptions = { packets: 20000, flows: 300, groups: 8, ipv6Share: 0.3, seed: 11 };

  for (const sizes of ["64", "1500", "imix"] as TraceSizes[]) {
    test(`with sizes ${sizes}, tshark reads every packet and every checksum is good`, () => {
      const out = join(dir, `trace-${sizes}.pcap`);
      generateTrace({ ...base, sizes, out });
      const rows = tshark(out);
      assert.equal(rows.length, 20000, "packet count");

      for (const r of rows) {
        const v6 = r["ipv6.src"] !== "";
        if (!v6) assert.equal(r["ip.checksum.status"], GOOD, "IPv4 header checksum");
        const l4 = [r["tcp.checksum.status"], r["udp.checksum.status"], v6 ? r["icmpv6.checksum.status"] : r["icmp.checksum.status"]];
        assert.deepEqual(l4.filter((s) => s !== ""), [GOOD], `transport checksum of ${flowKey(r)}`);
      }

      // Flows: exactly `flows` distinct 5-tuples (packets >= flows), 30% IPv6.
      const flows = new Map<string, Row[]>();
      for (const r of rows) {
        const k = flowKey(r);
        const list = flows.get(k);
        if (list) list.push(r);
        else flows.set(k, [r]);
      }
      assert.equal(flows.size, 300, "distinct flows");
      const v6Flows = [...flows.values()].filter((l) => l[0]["ipv6.src"] !== "").length;
      assert.equal(v6Flows, 90, "IPv6 flows = floor(300 * 0.3)");

      // TCP flows start with a SYN and end with a FIN once they have two packets.
      const tcp = [...flows.values()].filter((l) => l[0]["tcp.srcport"] !== "");
      assert.ok(tcp.length > 50);
      for (const l of tcp) {
        assert.ok(set(l[0]["tcp.flags.syn"]));
        assert.ok(l.slice(1).every((r) => !set(r["tcp.flags.syn"])));
        if (l.length >= 2) {
          assert.ok(set(l[l.length - 1]["tcp.flags.fin"]));
          assert.ok(l.slice(0, -1).every((r) => !set(r["tcp.flags.fin"])));
        }
      }

      // Frame sizes.
      const sizesSeen = new Map<number, number>();
      for (const r of rows) {
        if (set(r["tcp.flags.syn"])) continue; // SYNs: 66 / 86 bytes in every mode
        const len = Number(r["frame.len"]);
        sizesSeen.set(len, (sizesSeen.get(len) ?? 0) + 1);
      }
      const seen = [...sizesSeen.keys()].sort((a, b) => a - b);
      if (sizes === "64") assert.deepEqual(seen, [64, 74], "64 bytes, 74 for IPv6 TCP");
      else if (sizes === "1500") assert.deepEqual(seen, [1514]);
      else {
        assert.deepEqual(seen, [64, 74, 590, 1514]);
        const data = rows.length - tcp.length;
        const large = (sizesSeen.get(1514) ?? 0) / data;
        assert.ok(Math.abs(large - 1 / 12) < 0.02, `large share ${large}`);
      }
    });
  }
});
