// The install without AF_XDP's dependencies: binding.gyp and native/ built by
// npm, as `npm install` builds them, in a scratch copy with PIAS_XDP=0 (what
// native/xdp-probe.mjs answers when clang, libxdp or libbpf are missing). The
// install succeeds, the TUN addon is built, the AF_XDP addon is the stub that
// says why, and `pias run` with io xdp says it in one line and exits 1.

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/paths.js";

function unavailable(): string | undefined {
  if (process.platform !== "linux") return "the addons are built on Linux";
  if (spawnSync("npm", ["--version"]).status !== 0) return "npm is not on PATH";
  if (!existsSync(join(REPO_ROOT, "dist", "src", "cli", "pias.cjs"))) return "dist/ is not built (npm run build)";
  return undefined;
}

describe("npm install where clang and libxdp are missing", { skip: unavailable(), timeout: 240_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), "pias-nolibxdp-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test("succeeds, and pias run with io xdp says in one line why AF_XDP is unavailable and exits 1", () => {
    cpSync(join(REPO_ROOT, "binding.gyp"), join(dir, "binding.gyp"));
    cpSync(join(REPO_ROOT, "native"), join(dir, "native"), { recursive: true });
    writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "pias-install-check", version: "0.0.0", private: true, type: "module", gypfile: true }));
    const install = spawnSync("npm", ["install", "--offline", "--no-audit", "--no-fund"], {
      cwd: dir,
      encoding: "utf8",
      env: { ...process.env, PIAS_XDP: "0", NODE_PATH: join(REPO_ROOT, "node_modules") },
      timeout: 200_000,
    });
    assert.equal(install.status, 0, `npm install: ${install.stdout}\n${install.stderr}`);
    assert.match(install.stderr + install.stdout, /pias: the AF_XDP backend \(daemon\.io: xdp\) will be unavailable: built without it/, "said once at install");
    assert.ok(existsSync(join(dir, "build", "Release", "pias_tun.node")), "the TUN addon is built");
    const stub = createRequire(import.meta.url)(join(dir, "build", "Release", "pias_xdp.node"));
    assert.deepEqual({ ...stub }, { available: false, reason: "built without it (PIAS_XDP=0 at install)" });

    // the CLI of this checkout over the stub build
    cpSync(join(REPO_ROOT, "dist"), join(dir, "dist"), { recursive: true });
    cpSync(join(REPO_ROOT, "wasm"), join(dir, "wasm"), { recursive: true });
    symlinkSync(join(REPO_ROOT, "node_modules"), join(dir, "node_modules"));
    const config = join(dir, "xdp.json");
    writeFileSync(config, JSON.stringify({ proxy: { address: "10.255.0.1" }, daemon: { io: "xdp", xdpInterfaces: ["eth9"] } }));
    const run = spawnSync(process.execPath, [join(dir, "dist", "src", "cli", "pias.cjs"), "run", "--config", config], { encoding: "utf8", timeout: 30_000 });
    assert.equal(run.status, 1, run.stdout + run.stderr);
    assert.equal(run.stderr, "pias: the AF_XDP backend is unavailable: built without it (PIAS_XDP=0 at install)\n");
  });
});
