// A PIAS system run from etcd, end to end: a real three-member etcd cluster
// (Debian etcd-server) and four proxies running `pias run` with
// cluster.store, in network namespaces made here, with the router, targets
// and client of test/e2e/cluster.test.ts. Membership comes from leases,
// groups and keys from `pias config push`; the tests kill an etcd member and
// a proxy, rotate keys with traffic flowing, and cut a proxy off etcd.
//
//   e (etcd 10.7.0.2-4) --- router --- client 10.9.0.2, t1 10.8.1.2, t2 10.8.2.2
//                              |
//        p1 10.0.1.2 .. p4 10.0.4.2 (unicast J 10.255.0.1 .. 10.255.0.4)
//
// The router sends 198.51.100.0/24 from the client to p2 (its IAP), from t1
// to p1 and from t2 to p3 (their JAPs).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import { REPO_ROOT } from "../helpers/paths.js";
import { netnsUnavailable, Topology, waitForLine } from "../helpers/netns.js";
import { EtcdCluster, etcdUnavailable } from "../helpers/etcd.js";
import { PROXIES, routedTestbed } from "../helpers/testbed.js";

const skip = netnsUnavailable() ?? etcdUnavailable();
const CLI = join(REPO_ROOT, "dist", "src", "cli", "pias.cjs");
const TA = "198.51.100.10";
const WEB = "198.51.100.20";
const CONTROL = "198.51.100.1";
const PORT = 7470;
const TTL_S = 3;
const K1 = "c1".repeat(32);
const K2 = "c2".repeat(32);
const J1 = "a1".repeat(32);
const J2 = "a2".repeat(32);
const ETCD_HOSTS = ["10.7.0.2", "10.7.0.3", "10.7.0.4"];
const ENDPOINTS = ETCD_HOSTS.map((h) => `http://${h}:2379`);
const proxies = PROXIES;

/** A fleet document: the cluster key (and accepted key), the joinable group's join key (and accepted one), optional static groups. */
function fleet(o: { key: string; accept?: string; join: string; acceptJoin?: string; web?: boolean }): string {
  return JSON.stringify({
    ...(o.web ? { groups: [{ name: "web", protocol: "tcp", address: WEB, port: 80, targets: [{ address: "10.8.1.2", port: 8080 }] }] } : {}),
    cluster: {
      key: o.key, ...(o.accept ? { acceptKey: o.accept } : {}),
      groups: [{ protocol: "tcp", address: TA, port: 80, joinKey: o.join, ...(o.acceptJoin ? { acceptJoinKey: o.acceptJoin } : {}), policy: "affinity", affinity: "flow" }],
    },
  });
}

describe("a PIAS system run from etcd: membership by leases, configuration by watch", { skip, timeout: 300_000 }, () => {
  const topo = new Topology();
  const dir = mkdtempSync(join(tmpdir(), "pias-etcd-"));
  const daemons = new Map<string, ChildProcess>();
  const logs = new Map<string, string>();
  const joiners = new Map<string, ChildProcess>();
  let etcd: EtcdCluster;
  let web = false;
  let pushes = 0;

  const live = () => proxies.filter((p) => daemons.get(p.name)!.exitCode === null && daemons.get(p.name)!.signalCode === null);
  const metrics = (p: string): string => topo.run(p, ["curl", "-s", "--max-time", "2", "http://127.0.0.1:9464/metrics"]).stdout;
  const metric = (text: string, name: string): number =>
    text.split("\n").filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`)).reduce((n, l) => n + Number(l.split(" ").pop()), 0);
  const curl = (host = TA): { ok: boolean; out: string } => {
    const r = topo.run("c", ["curl", "-s", "-S", "--max-time", "4", `http://${host}/id`]);
    return { ok: r.status === 0, out: r.stdout.trim() };
  };
  const dump = (): string => [...logs].map(([p, l]) => `--- ${p}\n${l.slice(-2500)}`).join("\n");
  const until = async (what: string, cond: () => boolean, timeoutMs = 20_000): Promise<number> => {
    const t0 = Date.now();
    while (!cond()) {
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}\n${dump()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    return Date.now() - t0;
  };
  /** JSON log lines of proxy p with message msg (read so far). */
  const lines = (p: string, msg: string): Record<string, unknown>[] =>
    logs.get(p)!.split("\n").filter((l) => l.includes(`"msg":"${msg}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
  /** The last log line of proxy p with message msg that passes `pick`, once it has been read (the daemons' output is read between checks). */
  const logged = async (p: string, msg: string, pick: (l: Record<string, unknown>) => boolean = () => true): Promise<Record<string, unknown>> => {
    await until(`${p} logging "${msg}"`, () => lines(p, msg).some(pick), 5000);
    return lines(p, msg).filter(pick).pop()!;
  };
  /** Push a fleet document with `pias config push` (from the etcd namespace); returns the revision it was written at. */
  const push = (doc: string): number => {
    const file = join(dir, `fleet-${++pushes}.json`);
    writeFileSync(file, doc);
    const out = topo.exec("e", [process.execPath, CLI, "config", "push", file, "--endpoints", ENDPOINTS.join(",")]);
    return Number(/at revision (\d+)/.exec(out)![1]);
  };
  /** Until every live proxy acts on store revision `rev` or later: the step of a rotation is in force everywhere. */
  const everywhere = (rev: number) => until(`revision ${rev} on every proxy`, () => live().every((p) => metric(metrics(p.name), "pias_store_revision") >= rev));
  const anycastVia = (table: number, proxy: number): void => {
    topo.exec("r", ["ip", "route", "replace", "198.51.100.0/24", "via", `10.0.${proxy}.2`, "table", String(table)]);
  };
  const startJoin = (t: string, address: string, key: string): ChildProcess => {
    writeFileSync(join(dir, `${t}.key`), key);
    joiners.get(t)?.kill("SIGKILL");
    const p = topo.start(t, [process.execPath, CLI, "join", "--anycast", CONTROL, "--port", String(PORT), "--group", `tcp:${TA}:80`,
      "--address", address, "--target-port", "8080", "--key-file", join(dir, `${t}.key`)]);
    joiners.set(t, p);
    return p;
  };
  /** A client fetching the joinable group's TA every 100 ms until stopped; resolves to the results. */
  const traffic = () => {
    const p = topo.start("c", ["sh", "-c", `while true; do curl -s -o /dev/null -w '%{http_code}\\n' --max-time 3 http://${TA}/id; sleep 0.1; done`]);
    let out = "";
    p.stdout!.on("data", (b: Buffer) => (out += b.toString()));
    return {
      stop: async (): Promise<string[]> => {
        p.kill("SIGKILL");
        await new Promise((r) => p.once("exit", r));
        return out.trim().split("\n").filter(Boolean);
      },
    };
  };

  before(async () => {
    await routedTestbed(topo, dir);
    topo.addNamespace("e");
    const [ie] = topo.link("e", "10.7.0.2/24", "r", "10.7.0.1/24");
    for (const h of ETCD_HOSTS.slice(1)) topo.exec("e", ["ip", "addr", "add", `${h}/24`, "dev", ie]);
    topo.exec("e", ["ip", "route", "add", "default", "via", "10.7.0.1"]);
    for (const [table, from, proxy] of [[102, "10.9.0.0/24", 2], [101, "10.8.1.0/24", 1], [103, "10.8.2.0/24", 3]] as const) {
      topo.exec("r", ["ip", "rule", "add", "from", from, "lookup", String(table)]);
      anycastVia(table, proxy);
    }
    etcd = await EtcdCluster.start({ hosts: ETCD_HOSTS, spawn: (cmd) => topo.start("e", cmd), run: (cmd) => topo.run("e", cmd) });
    push(fleet({ key: K1, join: J1 })); // the proxies' files hold no key: it comes from the store
    for (const p of proxies) {
      const config = join(dir, `${p.name}.json`);
      writeFileSync(config, JSON.stringify({
        proxy: { address: p.j, anycastPrefixes: ["198.51.100.0/24"] },
        capacity: { flows: 65536, groups: 64, targets: 256 },
        daemon: { tunName: "pias0", metrics: "127.0.0.1:9464", drainMs: 0 },
        cluster: { id: p.name, controlPort: PORT, store: { etcd: { endpoints: ENDPOINTS, leaseTtl: TTL_S } } },
      }));
      const d = topo.start(p.name, [process.execPath, CLI, "run", "--config", config]);
      logs.set(p.name, "");
      d.stdout!.on("data", (b: Buffer) => logs.set(p.name, logs.get(p.name) + b.toString()));
      d.stderr!.on("data", (b: Buffer) => logs.set(p.name, logs.get(p.name) + b.toString()));
      daemons.set(p.name, d);
      await waitForLine(d, /"msg":"ready"/);
    }
    await until("membership from the store", () => proxies.every((p) => metric(metrics(p.name), "pias_cluster_live_proxies") === 4));
    await waitForLine(startJoin("t1", "10.8.1.2", J1), /joined/i);
  });

  after(async () => {
    if (process.env.PIAS_TEST_LOGS) for (const [p, l] of logs) writeFileSync(join(process.env.PIAS_TEST_LOGS, `${p}.log`), l);
    await topo.destroy();
    etcd?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test("every proxy's view comes from the store: four proxies, no heartbeat sent, and a client reaches the joined target through the IAP -> JAP tunnel", async () => {
    const revs = proxies.map((p) => metric(metrics(p.name), "pias_store_revision"));
    assert.equal(new Set(revs).size, 1, `one revision everywhere: ${revs}`);
    for (const p of proxies) {
      const m = metrics(p.name);
      assert.equal(metric(m, "pias_store_reachable"), 1);
      assert.equal(metric(m, "pias_store_view_stale"), 0);
      assert.doesNotMatch(m, /pias_control_messages_sent_total\{type="heartbeat"\}/);
    }
    await until("t1 at p1", () => metric(metrics("p1"), "pias_jap_targets") === 1);
    for (let i = 0; i < 5; i++) assert.deepEqual(curl(), { ok: true, out: "t1" });
  });

  test("a group pushed once reaches every proxy at the same revision and serves clients", async () => {
    web = true;
    const rev = push(fleet({ key: K1, join: J1, web }));
    await everywhere(rev);
    for (const p of proxies) {
      assert.match(metrics(p.name), /pias_target_up\{group="tcp 198\.51\.100\.20:80",target="10\.8\.1\.2:8080"\} 1/, p.name);
      await logged(p.name, "config reloaded", (l) => l.source === `store revision ${rev}` && (l.groupsAdded as string[]).includes(`tcp ${WEB}:80`));
    }
    assert.deepEqual(curl(WEB), { ok: true, out: "t1" }); // p2 NATs it straight to t1
  });

  test("a configuration written around `pias config push` that does not pass is refused by every proxy, and the running one stays", async () => {
    const rejected = (p: string) => metric(metrics(p), 'pias_config_reloads_total{result="rejected"}');
    const before = proxies.map((p) => rejected(p.name));
    etcd.etcdctl(["put", "/pias/config/groups/web", JSON.stringify({ protocol: "tcp", address: WEB, port: 80, targets: [{ address: "10.8.1.2", port: 80800 }] })]);
    await until("every proxy refused it", () => proxies.every((p, i) => rejected(p.name) === before[i] + 1));
    for (const p of proxies) await logged(p.name, "config reload rejected; the running config stays", (l) => /groups\[0\]\.targets\[0\]\.port: 80800/.test(l.err as string));
    assert.deepEqual(curl(WEB), { ok: true, out: "t1" });
    await everywhere(push(fleet({ key: K1, join: J1, web })));
  });

  test("key rotation in three pushes with traffic flowing: no control message rejected, no join lost, no request failed", async () => {
    const flow = traffic();
    const before = proxies.map((p) => metric(metrics(p.name), "pias_control_rejected_total"));
    await everywhere(push(fleet({ key: K1, accept: K2, join: J1, acceptJoin: J2, web }))); // 1: everyone accepts the new keys
    await waitForLine(startJoin("t2", "10.8.2.2", J2), /joined/i); // a target on the new join key
    await waitForLine(startJoin("t1", "10.8.1.2", J1), /joined/i); // and one joining again on the old
    await everywhere(push(fleet({ key: K2, accept: K1, join: J2, acceptJoin: J1, web }))); // 2: the new keys sign
    await new Promise((r) => setTimeout(r, 1500));
    await waitForLine(startJoin("t1", "10.8.1.2", J2), /joined/i); // t1 moves to the new join key
    await everywhere(push(fleet({ key: K2, join: J2, web }))); // 3: the old keys are gone
    await new Promise((r) => setTimeout(r, 1500));
    const results = await flow.stop();
    assert.ok(results.length > 20, `requests made: ${results.length}`);
    assert.deepEqual(results.filter((c) => c !== "200"), [], "every request answered");
    assert.deepEqual(proxies.map((p) => metric(metrics(p.name), "pias_control_rejected_total")), before, "nothing rejected");
    assert.equal(metric(metrics("p1"), "pias_jap_targets"), 1);
    assert.equal(metric(metrics("p3"), "pias_jap_targets"), 1);
    for (const t of ["t1", "t2"]) assert.equal(joiners.get(t)!.exitCode, null, `${t}'s joiner still running`);
  });

  test("killing one etcd member changes nothing: the views stay, and a push still reaches every proxy", async () => {
    await etcd.kill(0);
    await new Promise((r) => setTimeout(r, 2 * TTL_S * 1000));
    for (const p of proxies) {
      const m = metrics(p.name);
      assert.equal(metric(m, "pias_cluster_live_proxies"), 4, p.name);
      assert.equal(metric(m, "pias_store_view_stale"), 0, p.name);
      assert.equal(lines(p.name, "proxy membership").filter((l) => l.kind === "down").length, 0, p.name);
    }
    await everywhere(push(fleet({ key: K2, join: J2, web })));
    assert.equal(curl().ok, true);
    etcd.startMember(0);
    await etcd.waitHealthy([0, 1, 2]);
  });

  test("killing a proxy removes it from every view within its lease TTL, at one revision", async () => {
    const t0 = Date.now();
    daemons.get("p4")!.kill("SIGKILL");
    const others = ["p1", "p2", "p3"];
    const took = await until("p4 gone from every view", () => others.every((p) => metric(metrics(p), "pias_cluster_live_proxies") === 3), 15_000);
    assert.ok(took <= TTL_S * 1000 + 2000, `gone after ${Date.now() - t0} ms (TTL ${TTL_S} s)`);
    const downs = await Promise.all(others.map((p) => logged(p, "proxy membership", (l) => l.proxy === "p4" && l.kind === "down")));
    for (const p of others) assert.equal(lines(p, "proxy membership").filter((l) => l.proxy === "p4" && l.kind === "down").length, 1);
    assert.equal(new Set(downs.map((d) => d.revision)).size, 1, `one revision: ${downs.map((d) => d.revision)}`);
    assert.equal(curl().ok, true);
  });

  test("a proxy cut off from etcd keeps forwarding and says its view is stale; the others drop it at one revision; healed, it rejoins cleanly", async () => {
    const flow = traffic();
    let downs: Record<string, unknown>[] = [];
    topo.exec("p2", ["ip", "route", "add", "blackhole", "10.7.0.0/24"]);
    try {
      await until("p2 says its view is stale", () => metric(metrics("p2"), "pias_store_view_stale") === 1, 15_000);
      assert.equal(metric(metrics("p2"), "pias_store_reachable"), 0);
      await logged("p2", "membership view stale: the store has not confirmed it within the lease TTL; forwarding with this view");
      await until("p2 gone from the others' views", () => ["p1", "p3"].every((p) => metric(metrics(p), "pias_cluster_live_proxies") === 2), 15_000);
      downs = await Promise.all(["p1", "p3"].map((p) => logged(p, "proxy membership", (l) => l.proxy === "p2" && l.kind === "down")));
      assert.equal(downs[0].revision, downs[1].revision);
      await new Promise((r) => setTimeout(r, 2000)); // traffic goes on through p2 meanwhile
    } finally {
      topo.exec("p2", ["ip", "route", "del", "blackhole", "10.7.0.0/24"]);
    }
    await until("p2 back in every view", () => ["p1", "p2", "p3"].every((p) => metric(metrics(p), "pias_cluster_live_proxies") === 3), 30_000);
    await until("p2's view fresh again", () => metric(metrics("p2"), "pias_store_view_stale") === 0 && metric(metrics("p2"), "pias_store_reachable") === 1);
    await logged("p2", "rejoined the fleet with a new lease");
    const ups = await Promise.all(["p1", "p3"].map((p) => logged(p, "proxy membership", (l) => l.proxy === "p2" && l.kind === "up" && (l.revision as number) > (downs[0].revision as number))));
    assert.equal(ups[0].revision, ups[1].revision);
    await new Promise((r) => setTimeout(r, 1000));
    const results = await flow.stop();
    assert.ok(results.length > 20, `requests made: ${results.length}`);
    assert.deepEqual(results.filter((c) => c !== "200"), [], "p2 forwarded every request while cut off and after");
    assert.equal(metric(metrics("p1"), "pias_dropped_packets_total{reason=\"tunnel-from-stranger\"}"), 0);
  });
});
