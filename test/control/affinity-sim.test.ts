// npm run sim:affinity in quick mode (a child process with small parameters):
// its figures checked against what must hold whatever the numbers. Every
// sampled move is accounted for once; with no loss both memberships keep every
// client whose JAP lives; a store view never declares a live proxy dead and
// drops the dead one within the lease TTL, while heartbeats under heavy loss
// declare live proxies dead, which is what costs them affinity.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/paths.js";

const SECONDS = 10;
const CLIENTS = 100;

interface Outcome { membership: string; loss: number; moves: number; kept: number; deadJapMoves: number; unanswered: number; falseDowns: number; detectS: number }

test("affinity across IAPs under a JAP crash: all kept without loss; under 20% loss the store view keeps more clients because no live proxy is declared dead (quick mode)", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "bench/affinity.ts"), "--json"], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    env: { ...process.env, AFF_SECONDS: String(SECONDS), AFF_CLIENTS: String(CLIENTS), AFF_LOSS: "0,0.2", AFF_WRITE: "0" },
  });
  assert.equal(r.status, 0, r.stderr);
  const { results, params } = JSON.parse(r.stdout.trim().split("\n").pop()!) as { results: Outcome[]; params: { TTL_S: number } };
  const get = (membership: string, loss: number) => results.find((x) => x.membership === membership && x.loss === loss)!;
  const samples = (SECONDS * 1000) / 100 / 5;
  for (const x of results) assert.equal(x.moves + x.deadJapMoves + x.unanswered, samples * CLIENTS, "every sampled move counted once");
  for (const m of ["heartbeat", "store"]) {
    assert.equal(get(m, 0).kept, get(m, 0).moves, `${m}, no loss: every client whose JAP lives keeps it`);
    assert.ok(get(m, 0).deadJapMoves > 0, "the crash took some clients' JAP");
  }
  for (const loss of [0, 0.2]) {
    assert.equal(get("store", loss).falseDowns, 0);
    assert.ok(get("store", loss).detectS <= params.TTL_S + 0.2, `dead JAP dropped within the TTL: ${get("store", loss).detectS} s`);
  }
  assert.ok(get("heartbeat", 0.2).falseDowns > 0, "heavy loss makes heartbeats declare live proxies dead");
  assert.ok(get("store", 0.2).kept / get("store", 0.2).moves > get("heartbeat", 0.2).kept / get("heartbeat", 0.2).moves);
});
