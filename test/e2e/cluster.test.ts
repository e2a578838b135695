// PIAS across proxies, end to end: four proxies running `pias run` on TUN,
// a router that sends the anycast prefix to the "nearest" proxy by static
// routes chosen per source network, targets that join with `pias join`, and
// a client. Every namespace and link is created and removed here.
//
//            client 10.9.0.2          t1 10.8.1.2          t2 10.8.2.2
//                  \                      |                    /
//                   +------------------ router ---------------+
//                  /                      |                    \
//   p1 10.0.1.2 (J 10.255.0.1)   p2 10.0.2.2 (J 10.255.0.2)   p3 10.0.3.2 (J 10.255.0.3)
//   (and p4 10.0.4.2, J 10.255.0.4, beside them)
//
// The router sends 198.51.100.0/24 from the client to p2 (its IAP), from t1
// to p1 and from t2 to p3 (their JAPs); each proxy's unicast address J is
// routed to it. Changing those routes is what BGP would do when a proxy goes.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, mkdirSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { REPO_ROOT } from "../helpers/paths.js";
import { netnsUnavailable, Topology, waitForLine } from "../helpers/netns.js";

const skip = netnsUnavailable();
const CLI = join(REPO_ROOT, "dist", "src", "cli", "main.js");
const TA = "198.51.100.10";
const CONTROL = "198.51.100.1";
const PORT = 7470;
const CLUSTER_KEY = "c1".repeat(32);
const JOIN_KEY = "a7".repeat(32);
const proxies = [1, 2, 3, 4].map((i) => ({ name: `p${i}`, net: `10.0.${i}`, j: `10.255.0.${i}` }));

describe("PIAS across four proxies: joins, rendezvous, IAP -> JAP tunnels, failures", { skip, timeout: 240_000 }, () => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), "pias-cluster-"));
  const daemons = new Map<string, ChildProcess>();
  const logs = new Map<string, string>();
  const joiners = new Map<string, ChildProcess>();

  const metrics = (p: string): string => topo.exec(p, ["curl", "-s", "http://127.0.0.1:9464/metrics"]);
  const metric = (text: string, name: string): number =>
    text.split("\n").filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`)).reduce((n, l) => n + Number(l.split(" ").pop()), 0);
  const curl = (path = "/id", times = 1): { ok: boolean; out: string[]; err: string } => {
    const r = topo.run("c", ["curl", "-s", "-S", "--max-time", "4", ...Array.from({ length: times }, () => `http://${TA}${path}`)]);
    return { ok: r.status === 0, out: r.stdout.trim().split("\n"), err: r.stderr };
  };
  const until = async (what: string, cond: () => boolean, timeoutMs = 15_000): Promise<void> => {
    const t0 = Date.now();
    while (!cond()) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}\n${[...logs].map(([p, l]) => `--- ${p}\n${l.slice(-1500)}`).join("\n")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  /** Route the anycast prefix from `table` (the client's or a target's region) to proxy i, as BGP would. */
  const anycastVia = (table: number, proxy: number): void => {
    topo.exec("r", ["ip", "route", "replace", "198.51.100.0/24", "via", `10.0.${proxy}.2`, "table", String(table)]);
  };
  const startJoin = async (t: string, address: string, keyFile: string): Promise<ChildProcess> => {
    const p = topo.start(t, [process.execPath, CLI, "join", "--anycast", CONTROL, "--port", String(PORT), "--group", `tcp:${TA}:80`,
      "--address", address, "--target-port", "8080", "--key-file", keyFile]);
    joiners.set(t, p);
    return p;
  };

  before(async () => {
    topo.addNamespace("r");
    topo.sysctl("r", "net.ipv4.ip_forward", "1");
    topo.addNamespace("c");
    topo.link("c", "10.9.0.2/24", "r", "10.9.0.1/24");
    topo.exec("c", ["ip", "route", "add", "default", "via", "10.9.0.1"]);
    for (const [i, t] of ["t1", "t2"].entries()) {
      topo.addNamespace(t);
      topo.link(t, `10.8.${i + 1}.2/24`, "r", `10.8.${i + 1}.1/24`);
      topo.exec(t, ["ip", "route", "add", "default", "via", `10.8.${i + 1}.1`]);
      const www = join(dir, t);
      mkdirSync(www);
      writeFileSync(join(www, "id"), `${t}\n`);
      topo.start(t, ["python3", "-m", "http.server", "8080", "--bind", `10.8.${i + 1}.2`, "--protocol", "HTTP/1.1", "--directory", www]);
    }
    for (const p of proxies) {
      topo.addNamespace(p.name);
      topo.link(p.name, `${p.net}.2/24`, "r", `${p.net}.1/24`);
      topo.exec(p.name, ["ip", "route", "add", "default", "via", `${p.net}.1`]);
      topo.exec("r", ["ip", "route", "add", `${p.j}/32`, "via", `${p.net}.2`]);
    }
    // "nearest proxy" per region: client -> p2, t1 -> p1, t2 -> p3
    for (const [table, from, proxy] of [[102, "10.9.0.0/24", 2], [101, "10.8.1.0/24", 1], [103, "10.8.2.0/24", 3]] as const) {
      topo.exec("r", ["ip", "rule", "add", "from", from, "lookup", String(table)]);
      anycastVia(table, proxy);
    }
    const t0 = Date.now();
    while (!["t1", "t2"].every((t, i) => topo.run("r", ["curl", "-s", "--max-time", "1", `http://10.8.${i + 1}.2:8080/id`]).status === 0)) {
      if (Date.now() - t0 > 20_000) throw new Error("the targets' HTTP servers did not start");
      await new Promise((r) => setTimeout(r, 100));
    }
    writeFileSync(join(dir, "join.key"), JOIN_KEY);
    writeFileSync(join(dir, "wrong.key"), "00".repeat(32));
    for (const p of proxies) {
      const config = join(dir, `${p.name}.json`);
      writeFileSync(config, JSON.stringify({
        proxy: { address: p.j, anycastPrefixes: ["198.51.100.0/24"] },
        capacity: { flows: 65536, groups: 64, targets: 256 },
        daemon: { tunName: "pias0", metrics: "127.0.0.1:9464", drainMs: 0 },
        cluster: {
          id: p.name, controlPort: PORT, key: CLUSTER_KEY, seeds: proxies.filter((q) => q !== p).map((q) => q.j),
          groups: [{ protocol: "tcp", address: TA, port: 80, joinKey: JOIN_KEY, policy: "affinity", affinity: "flow" }],
        },
      }));
      const d = topo.start(p.name, [process.execPath, CLI, "run", "--config", config]);
      logs.set(p.name, "");
      d.stdout!.on("data", (b: Buffer) => logs.set(p.name, logs.get(p.name) + b.toString()));
      d.stderr!.on("data", (b: Buffer) => logs.set(p.name, logs.get(p.name) + b.toString()));
      daemons.set(p.name, d);
      await waitForLine(d, /"msg":"ready"/);
    }
    // every proxy sees the other two
    await until("membership", () => proxies.every((p) => metric(metrics(p.name), "pias_cluster_live_proxies") === 4));
  });

  after(async () => {
    await topo.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a join signed with the wrong key is rejected and counted, and adds no target", async () => {
    const forged = await startJoin("t1", "10.8.1.2", join(dir, "wrong.key"));
    await until("a rejected join at p1", () => metric(metrics("p1"), "pias_control_rejected_total") > 0);
    assert.equal(metric(metrics("p1"), "pias_jap_targets"), 0);
    forged.kill("SIGKILL");
  });

  test("a target joins through its nearest proxy (the JAP) and a client whose IAP is another proxy completes TCP connections through the IAP -> JAP tunnel", async () => {
    const j = await startJoin("t1", "10.8.1.2", join(dir, "join.key"));
    await waitForLine(j, /joined/i);
    await until("t1 at p1", () => metric(metrics("p1"), "pias_jap_targets") === 1);
    for (let i = 0; i < 10; i++) {
      const r = curl("/id", 2);
      assert.ok(r.ok, r.err);
      assert.deepEqual(r.out, ["t1", "t1"]);
    }
    assert.ok(metric(metrics("p2"), "pias_encapsulated_packets_total") > 0, "p2 (IAP) tunnelled");
    assert.ok(metric(metrics("p1"), "pias_decapsulated_packets_total") > 0, "p1 (JAP) decapsulated");
    assert.equal(metric(metrics("p2"), "pias_jap_targets"), 0, "the IAP holds no target");
  });

  test("a reload (SIGHUP) keeps the groups the cluster installed: joined targets at the JAP, resolved JAPs at the IAP", async () => {
    for (const p of ["p1", "p2"]) daemons.get(p)!.kill("SIGHUP");
    await until("both reloaded", () => ["p1", "p2"].every((p) => /"msg":"config reloaded"/.test(logs.get(p)!)));
    const r = curl("/id", 2);
    assert.ok(r.ok, r.err);
    assert.deepEqual(r.out, ["t1", "t1"]);
  });

  test("a second target joins through another proxy and starts receiving new flows", async () => {
    const j = await startJoin("t2", "10.8.2.2", join(dir, "join.key"));
    await waitForLine(j, /joined/i);
    await until("t2 at p3", () => metric(metrics("p3"), "pias_jap_targets") === 1);
    const seen = new Set<string>();
    await until("flows reaching t2", () => {
      const r = curl();
      if (r.ok) seen.add(r.out[0]);
      return seen.has("t2");
    });
    for (let i = 0; i < 20; i++) {
      const r = curl();
      assert.ok(r.ok, r.err);
      seen.add(r.out[0]);
    }
    assert.deepEqual([...seen].sort(), ["t1", "t2"]);
  });

  // (An IAP that is itself a JAP of the group serves it with its own targets,
  // DESIGN.md §2 step 2, so the move here is between two proxies that are not.)
  test("with affinity, a client moved to another IAP mid-connection keeps its connection and target", async () => {
    const holder = topo.start("c", ["python3", join(REPO_ROOT, "test", "e2e", "clients.py"), "hold", TA, "80", "4"]);
    const first = JSON.parse(await waitForLine(holder, /^\{"before"/)) as { before: string[] };
    assert.ok(first.before.every((t) => /^t[12]$/.test(t)), JSON.stringify(first));
    anycastVia(102, 4); // the client's packets now reach p4
    holder.stdin!.write("\n");
    const done = JSON.parse(await waitForLine(holder, /"after"/)) as { before: string[]; after: string[] };
    assert.deepEqual(done.after, done.before);
    anycastVia(102, 2);
  });

  test("a target that leaves stops receiving new flows", async () => {
    joiners.get("t1")!.kill("SIGTERM");
    await until("t1 gone from p1", () => metric(metrics("p1"), "pias_jap_targets") === 0);
    // the RAP pushes the change; the IAP re-reads its answers every second
    let streak = 0;
    await until("the IAP's answer without p1", () => {
      const r = curl();
      streak = r.ok && r.out[0] === "t2" ? streak + 1 : 0;
      return streak >= 5;
    });
    for (let i = 0; i < 10; i++) assert.deepEqual(curl().out, ["t2"]);
  });

  test("a JAP that dies: its target re-joins through another proxy, the others forget it, and clients recover", async () => {
    daemons.get("p3")!.kill("SIGKILL");
    anycastVia(103, 1); // BGP withdraws p3: t2's keepalives now reach p1
    await until("t2 at p1", () => metric(metrics("p1"), "pias_jap_targets") === 1, 30_000);
    await until("p3 dead at p2", () => metric(metrics("p2"), "pias_cluster_live_proxies") === 3, 30_000);
    await until("clients served again", () => {
      const r = curl();
      return r.ok && r.out[0] === "t2";
    }, 30_000);
  });
});
