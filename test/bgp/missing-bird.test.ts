// `pias run` with a managed `bgp` section on a machine without BIRD (or
// without setpriv) stops at start with one line naming the Debian package,
// before it opens anything (no root needed to see it).

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/paths.js";

const tmp = mkdtempSync(join(tmpdir(), "pias-nobird-"));
after(() => rmSync(tmp, { recursive: true, force: true }));
const config = join(tmp, "proxy.json");
writeFileSync(config, JSON.stringify({
  proxy: { address: "10.255.0.1", anycastPrefixes: ["198.51.100.0/24"] },
  bgp: { localAs: 65001, neighbors: [{ address: "10.0.0.1", as: 65000 }] },
}));

function run(path: string): { status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "src/cli/main.ts"), "run", "--config", config], {
    encoding: "utf8",
    cwd: REPO_ROOT,
    env: { ...process.env, PATH: path },
    timeout: 20_000,
  });
  return { status: r.status, stderr: r.stderr };
}

test("no `bird` on PATH: exit 1 with one line naming the package bird2", () => {
  const r = run(join(tmp, "empty"));
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr, "pias: bgp: no `bird` on PATH: install BIRD 2 (Debian package bird2: apt-get install bird2), or point bgp.bird at the control socket of a running BIRD\n");
});

test("`bird` but no `setpriv` on PATH: exit 1 with one line naming util-linux", () => {
  const bin = join(tmp, "bin");
  const fake = join(bin, "bird");
  mkdirSync(bin, { recursive: true });
  symlinkSync("/bin/true", fake);
  const r = run(bin);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr, "pias: bgp: no `setpriv` on PATH (it ties BIRD's life to pias's): install the Debian package util-linux\n");
});
