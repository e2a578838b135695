// The next-hop MACs of the pcap backend (src/io/neighbors.ts), on a fake
// source of routes and neighbours (what `ip -j route` / `ip -j neigh` print)
// and a fake clock: no interface, no root.

import { test } from "node:test";
import assert from "node:assert/strict";
import { Neighbors, type NeighborRow, type NeighborSource, type RouteRow } from "../../src/io/neighbors.js";
import { parseAddress } from "../../src/net/addr.js";

const a = (text: string): Uint8Array => parseAddress(text).bytes;
const mac = (text: string): number[] => text.split(":").map((h) => parseInt(h, 16));

class FakeSource implements NeighborSource {
  routes4: RouteRow[] = [
    { dst: "default", gateway: "10.0.0.1" },
    { dst: "10.0.0.0/24" },
    { dst: "192.0.2.0/24", gateway: "10.0.0.2" },
    { dst: "198.51.100.7" },
    { dst: "not a prefix" },
  ];
  routes6: RouteRow[] = [{ dst: "default", gateway: "fe80::1" }, { dst: "2001:db8::/64" }];
  neigh: NeighborRow[] = [
    { dst: "10.0.0.1", lladdr: "02:00:00:00:00:01", state: ["REACHABLE"] },
    { dst: "10.0.0.2", lladdr: "02:00:00:00:00:02", state: ["STALE"] },
    { dst: "10.0.0.9", lladdr: "02:00:00:00:00:09", state: ["REACHABLE"] },
    { dst: "198.51.100.7", lladdr: "02:00:00:00:00:07", state: ["PERMANENT"] },
    { dst: "fe80::1", lladdr: "02:00:00:00:00:61", state: ["REACHABLE"] },
    { dst: "10.0.0.3", lladdr: "02:00:00:00:00:03", state: ["FAILED"] },
    { dst: "10.0.0.4", state: ["INCOMPLETE"] },
  ];
  reads = 0;
  resolving: { hop: string; done: () => void }[] = [];
  mac(): string {
    return "02:aa:bb:cc:dd:ee";
  }
  routes(family: 4 | 6) {
    if (family === 4) this.reads++;
    return family === 4 ? this.routes4 : this.routes6;
  }
  neighbors() {
    return this.neigh;
  }
  resolve(hop: string, done: () => void): void {
    this.resolving.push({ hop, done });
  }
}

function setup(): { n: Neighbors; src: FakeSource; clock: { t: number } } {
  const src = new FakeSource();
  const clock = { t: 1_000_000 };
  return { n: new Neighbors("eth9", src, () => clock.t), src, clock };
}

test("the next hop is the gateway of the longest matching route, or the destination itself on-link; its MAC comes from the neighbour table", () => {
  const { n } = setup();
  assert.deepEqual([...n.mac], mac("02:aa:bb:cc:dd:ee"));
  const cases: [string, string, string | null][] = [
    ["192.0.2.50", "10.0.0.2", "02:00:00:00:00:02"], // the /24 via 10.0.0.2 beats the default route
    ["10.0.0.9", "10.0.0.9", "02:00:00:00:00:09"], // on-link: the destination's own MAC
    ["198.51.100.7", "198.51.100.7", "02:00:00:00:00:07"], // a host route
    ["203.0.113.1", "10.0.0.1", "02:00:00:00:00:01"], // the default route
    ["2001:db8:1::1", "fe80::1", "02:00:00:00:00:61"], // IPv6 default route
  ];
  for (const [dst, hop, want] of cases) {
    assert.equal(n.nextHop(a(dst)), hop, `next hop toward ${dst}`);
    assert.deepEqual(n.lookup(a(dst)) && [...n.lookup(a(dst))!], want && mac(want), `MAC toward ${dst}`);
  }
});

test("with no route on the interface there is no next hop, and nothing is resolved", () => {
  const { n, src } = setup();
  src.routes4 = [{ dst: "10.0.0.0/24" }];
  n.refresh();
  assert.equal(n.nextHop(a("203.0.113.1")), null);
  assert.equal(n.lookup(a("203.0.113.1")), null);
  assert.deepEqual(src.resolving, []);
});

test("an unknown, failed or incomplete neighbour is resolved once, however many packets wait; once resolved its MAC is used", () => {
  const { n, src, clock } = setup();
  for (const dst of ["10.0.0.3", "10.0.0.4", "10.0.0.5"]) {
    for (let i = 0; i < 3; i++) {
      assert.equal(n.lookup(a(dst)), null, `${dst}: no MAC yet`);
      clock.t += 300; // past the re-read after a miss
    }
  }
  assert.deepEqual(src.resolving.map((r) => r.hop), ["10.0.0.3", "10.0.0.4", "10.0.0.5"], "one resolution per next hop");
  src.neigh.push({ dst: "10.0.0.5", lladdr: "02:00:00:00:00:05", state: ["REACHABLE"] });
  src.resolving[2].done();
  assert.deepEqual([...n.lookup(a("10.0.0.5"))!], mac("02:00:00:00:00:05"), "the table is re-read after a resolution");
});

test("the tables are re-read every 5 s, and on a miss at most every 200 ms", () => {
  const { n, src, clock } = setup();
  const reads = src.reads;
  n.lookup(a("10.0.0.9"));
  clock.t += 4000;
  n.lookup(a("10.0.0.9"));
  assert.equal(src.reads, reads, "a hit within 5 s reads nothing");
  src.neigh[2] = { dst: "10.0.0.9", lladdr: "02:00:00:00:00:99", state: ["REACHABLE"] };
  clock.t += 1001;
  assert.deepEqual([...n.lookup(a("10.0.0.9"))!], mac("02:00:00:00:00:99"), "after 5 s the new MAC");
  assert.equal(src.reads, reads + 1);
  n.lookup(a("10.0.0.77"));
  clock.t += 100;
  n.lookup(a("10.0.0.77"));
  assert.equal(src.reads, reads + 1, "misses within 200 ms of a read read nothing");
  clock.t += 150;
  n.lookup(a("10.0.0.77"));
  assert.equal(src.reads, reads + 2, "a miss later re-reads");
});

test("the kernel's tables (no root needed): lo's MAC is all zero; an interface that does not exist is a one-line error", () => {
  assert.deepEqual([...new Neighbors("lo").mac], [0, 0, 0, 0, 0, 0]);
  assert.throws(() => new Neighbors("pias-none0"), (err: Error & { code?: string }) => err.code === "EIFACE" && err.message === "no interface pias-none0");
});
