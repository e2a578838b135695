// `pias run` with cluster.store when the store does not answer at start.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/paths.js";
import { freePort } from "../helpers/etcd.js";

test("with no cluster key in the file and no store answering, pias run exits 1 at once with one line naming the file", async () => {
  const dir = mkdtempSync(join(tmpdir(), "pias-run-store-"));
  try {
    const config = join(dir, "proxy.json");
    writeFileSync(config, JSON.stringify({ proxy: { address: "10.255.0.1" }, daemon: { logLevel: "error" }, cluster: { id: "p1", store: { etcd: { endpoints: [`127.0.0.1:${await freePort()}`] } } } }));
    const t0 = Date.now();
    const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/main.ts"), "run", "--config", config], { encoding: "utf8", timeout: 30_000 });
    assert.equal(r.status, 1, r.stderr);
    assert.equal(r.stderr.trim(), `pias: ${config} with no fleet configuration from the store: cluster.key: required: the key proxies sign their messages with (hex)`);
    assert.ok(Date.now() - t0 < 15_000, `exited after ${Date.now() - t0} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
