// `pias config push` against a real etcd (one member on loopback, started
// here; skipped with the reason where etcd is not installed).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/paths.js";
import { EtcdCluster, etcdUnavailable, freePort } from "../helpers/etcd.js";

const skip = etcdUnavailable();
const dir = mkdtempSync(join(tmpdir(), "pias-push-"));
const KEY = "c1".repeat(16);

function pias(...args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/main.ts"), ...args], { encoding: "utf8", cwd: REPO_ROOT });
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

const FLEET = `groups:
  - name: web
    protocol: tcp
    address: 198.51.100.20
    port: 80
    targets: [{ address: 10.8.1.2, port: 8080 }]
cluster:
  key: ${KEY}
  groups:
    - { protocol: tcp, address: 198.51.100.10, port: 80, joinKey: ${"a7".repeat(16)} }
`;

describe("pias config push", { skip }, () => {
  let etcd: EtcdCluster;
  const keys = (): string[] => etcd.etcdctl(["get", "--prefix", "--keys-only", "/pias/config/"]).split("\n").filter(Boolean);
  const revision = (): number => Number(JSON.parse(etcd.etcdctl(["get", "/", "-w", "json"])).header.revision);

  before(async () => {
    etcd = await EtcdCluster.start({ size: 1 });
  });
  after(() => {
    etcd?.destroy();
    rmSync(dir, { recursive: true, force: true });
  });

  test("writes every part of the document under <prefix>/config/ in one transaction", () => {
    const r = pias("config", "push", file("fleet.yaml", FLEET), "--endpoints", etcd.endpoints.join(","));
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^pias config push: .*fleet\.yaml: 3 keys under \/pias\/config\/ at revision (\d+)\n$/);
    assert.deepEqual(keys(), ["/pias/config/cluster/groups/tcp 198.51.100.10:80", "/pias/config/cluster/key", "/pias/config/groups/web"]);
    assert.equal(Number(/revision (\d+)/.exec(r.stdout)![1]), revision());
  });

  test("a second push replaces the first: parts it no longer has are gone, at one revision", () => {
    const before = revision();
    const r = pias("config", "push", file("fleet2.yaml", `cluster:\n  key: ${KEY}\n`), "--endpoints", etcd.endpoints[0]);
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(keys(), ["/pias/config/cluster/key"]);
    assert.equal(revision(), before + 1);
  });

  test("an invalid document is refused with one line naming its line, and nothing is written", () => {
    const before = revision();
    const r = pias("config", "push", file("bad.yaml", FLEET.replace("port: 8080", "port: 80800")), "--endpoints", etcd.endpoints[0]);
    assert.equal(r.status, 1);
    assert.equal(r.stderr.trim(), `pias: ${join(dir, "bad.yaml")}:6: groups[0].targets[0].port: 80800 is not in 0..65535`);
    assert.equal(revision(), before);
  });

  test("--dry-run prints the keys and writes nothing; --config takes the store from a proxy's cluster.store", () => {
    const before = revision();
    const proxy = file("proxy.json", JSON.stringify({ proxy: { address: "10.255.0.1" }, cluster: { key: KEY, store: { etcd: { endpoints: etcd.endpoints, prefix: "/other" } } } }));
    const r = pias("config", "push", join(dir, "fleet.yaml"), "--config", proxy, "--dry-run");
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split("\n").map((l) => l.split(" {")[0]), ["/other/config/groups/web", "/other/config/cluster/key", "/other/config/cluster/groups/tcp 198.51.100.10:80"]);
    assert.equal(revision(), before);
  });

  test("a store that does not answer is one line on stderr and exit 1", async () => {
    const r = pias("config", "push", join(dir, "fleet.yaml"), "--endpoints", `127.0.0.1:${await freePort()}`);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /^pias: etcd http:\/\/127\.0\.0\.1:\d+: read: .+\n$/);
  });

  test("usage errors exit 2", () => {
    assert.equal(pias("config", "push", join(dir, "fleet.yaml")).status, 2);
    assert.equal(pias("config", "pull").status, 2);
  });
});
