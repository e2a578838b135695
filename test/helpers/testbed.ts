// The routed testbed of the multi-proxy end-to-end tests: a router `r`, a
// client `c` (10.9.0.2), two targets `t1`, `t2` (10.8.1.2, 10.8.2.2) serving
// HTTP/1.1 on port 8080 from a directory of their own (`id` holds the
// target's name), and proxies p1..p4 on 10.0.i.2 whose unicast address
// 10.255.0.i is routed to them. Which proxy is "nearest" to whom (the
// anycast prefix's routes) is each test's business.

import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Topology } from "./netns.js";

export const PROXIES = [1, 2, 3, 4].map((i) => ({ name: `p${i}`, net: `10.0.${i}`, j: `10.255.0.${i}` }));
export const TARGETS = ["t1", "t2"].map((name, i) => ({ name, address: `10.8.${i + 1}.2`, gateway: `10.8.${i + 1}.1` }));

/** Build the testbed in `topo` (files under `dir`; `files(t)` adds to a target's directory) and wait until the targets serve. */
export async function routedTestbed(topo: Topology, dir: string, files: (target: string) => Record<string, string | Buffer> = () => ({})): Promise<void> {
  topo.addNamespace("r");
  topo.sysctl("r", "net.ipv4.ip_forward", "1");
  topo.addNamespace("c");
  topo.link("c", "10.9.0.2/24", "r", "10.9.0.1/24");
  topo.exec("c", ["ip", "route", "add", "default", "via", "10.9.0.1"]);
  for (const t of TARGETS) {
    topo.addNamespace(t.name);
    topo.link(t.name, `${t.address}/24`, "r", `${t.gateway}/24`);
    topo.exec(t.name, ["ip", "route", "add", "default", "via", t.gateway]);
    const www = join(dir, t.name);
    mkdirSync(www);
    writeFileSync(join(www, "id"), `${t.name}\n`);
    for (const [name, content] of Object.entries(files(t.name))) writeFileSync(join(www, name), content);
    topo.start(t.name, ["python3", "-m", "http.server", "8080", "--bind", t.address, "--protocol", "HTTP/1.1", "--directory", www]);
  }
  for (const p of PROXIES) {
    topo.addNamespace(p.name);
    topo.link(p.name, `${p.net}.2/24`, "r", `${p.net}.1/24`);
    topo.exec(p.name, ["ip", "route", "add", "default", "via", `${p.net}.1`]);
    topo.exec("r", ["ip", "route", "add", `${p.j}/32`, "via", `${p.net}.2`]);
  }
  const t0 = Date.now();
  while (!TARGETS.every((t) => topo.run("r", ["curl", "-s", "--max-time", "1", `http://${t.address}:8080/id`]).status === 0)) {
    if (Date.now() - t0 > 20_000) throw new Error("the targets' HTTP servers did not start");
    await new Promise((r) => setTimeout(r, 100));
  }
}
