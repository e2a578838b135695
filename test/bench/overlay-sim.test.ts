// npm run sim:overlay in quick mode: the simulation runs as a child process
// with small parameters and its figures are checked against each other and
// against what the cores counted (never for speed).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { REPO_ROOT } from "../helpers/paths.js";

test("the overlay simulation's figures agree with the protocol: every connection opens and is answered, replies enter where anycast puts them, a failed node moves only its own blocks (quick mode)", () => {
  const r = spawnSync(process.execPath, ["--import", "tsx", join(REPO_ROOT, "bench/overlay-sim.ts"), "--json"], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    env: { ...process.env, OSIM_NODES: "8", OSIM_CLIENTS: "100", OSIM_CONNECTIONS: "4000", OSIM_HOSTS: "400", OSIM_SECONDS: "9", OSIM_OUT: "" },
  });
  assert.equal(r.status, 0, r.stderr);
  for (const heading of ["| control messages per second", "| state per node", "| data path", "entering at the remote host's nearest node"]) assert.ok(r.stdout.includes(heading), heading);
  const j = JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  const d = j.data;
  const n = j.params.connections;

  // control plane: both rings and discovery ran; every client found a node
  for (const kind of ["heartbeat", "overlay-heartbeat", "discover", "discover-reply"]) assert.ok(j.control.messagesPerSecond[kind] > 0, kind);
  assert.equal(j.control.discovered, j.params.clients);
  assert.equal(j.control.failure.moved, j.control.failure.owned, "the failed node's blocks moved");
  assert.equal(j.control.failure.otherBlocksMoved, 0, "and no other block");
  assert.deepEqual(j.control.failure.viewsAfter, [j.params.nodes - 1, j.params.nodes - 1]);

  // data path: two packets each way per connection, nothing lost
  assert.deepEqual(d.drops, {});
  assert.equal(d.connectionsOpened, n);
  assert.equal(d.bindingsLive, n);
  assert.equal(d.toHost, 2 * n);
  assert.equal(d.returns, 2 * n);
  assert.equal(d.toClient, 2 * n);
  // a return enters at its owner (reply handled there) or is relayed to it, never both
  assert.equal(d.returnsAtOwner, d.repliesDirect);
  assert.equal(d.returns - d.returnsAtOwner, d.relayedToOwner);
  assert.equal(d.relayedToOwner, d.repliesViaNode);
  // every first packet goes direct; later ones through the remote node, or direct where the owner is the host's entry node
  assert.equal(d.viaRemote + d.direct, 2 * n);
  assert.equal(d.sentOut, d.viaRemote);
  assert.ok(d.viaRemote > 0 && d.direct >= n);
  assert.equal(d.nodeFrames, d.relayedToOwner + d.viaRemote);
  assert.ok(d.shareAtRemoteNearest > 0.5 && d.shareAtRemoteNearest <= 1);
  assert.equal(j.perNode.bindings.mean * j.params.nodes, n);
});
