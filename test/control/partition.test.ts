// The overlay's TA partition (src/control/partition.ts): rendezvous hashing of
// port blocks over the live overlay nodes.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Partition, type PartitionSpace } from "../../src/control/partition.js";
import { parseAddress } from "../../src/net/addr.js";

const runs = Number(process.env.PIAS_FUZZ_RUNS ?? 60);
const SPACE: PartitionSpace = { prefixes: ["203.0.113.0/28", "198.51.100.64/30"], ports: [1024, 4095], blockPorts: 64 };
const ids = fc.uniqueArray(fc.stringMatching(/^[a-z][a-z0-9]{0,5}$/), { minLength: 1, maxLength: 12 });

function owners(p: Partition): (string | undefined)[] {
  return Array.from({ length: p.blocks }, (_, b) => p.owner(b));
}

test("the space is cut into blocks of blockPorts ports of one address, and every TA of it falls in exactly one", () => {
  const p = new Partition(SPACE);
  assert.equal(p.blocksPerAddress, 48);
  assert.equal(p.blocks, (16 + 4) * 48);
  const seen = new Set<number>();
  for (const a of ["203.0.113.0", "203.0.113.15", "198.51.100.64", "198.51.100.67"]) {
    for (const port of [1024, 1087, 1088, 4095]) {
      const b = p.blockOf(parseAddress(a).bytes, port);
      assert.ok(b >= 0 && b < p.blocks);
      seen.add(b);
    }
  }
  assert.equal(seen.size, 4 * 3, "1024 and 1087 share a block; 1088 and 4095 do not");
  for (const [a, port] of [["203.0.113.16", 2000], ["198.51.100.68", 2000], ["203.0.113.1", 1023], ["203.0.113.1", 4096]] as const) {
    assert.equal(p.blockOf(parseAddress(a).bytes, port), -1, `${a}:${port} is outside`);
  }
});

test("every block has exactly one owner among the live nodes, and the same live nodes give the same owners whatever order they came and went in", () => {
  fc.assert(fc.property(ids, ids, fc.integer({ min: 0, max: 1000 }), (live, extra, seed) => {
    const a = new Partition(SPACE);
    a.setNodes(live);
    const b = new Partition(SPACE);
    const shuffled = [...live].sort((x, y) => ((x.charCodeAt(0) * seed) % 7) - ((y.charCodeAt(0) * seed) % 7));
    for (const id of [...extra, ...shuffled]) b.join(id);
    for (const id of extra) if (!live.includes(id)) b.leave(id);
    const oa = owners(a);
    assert.deepEqual(owners(b), oa);
    assert.ok(oa.every((o) => o !== undefined && live.includes(o)));
    assert.equal([...a.shares().values()].reduce((x, y) => x + y, 0), a.blocks);
  }), { numRuns: runs });
});

test("a node joining moves exactly the blocks it now wins, and no other block changes owner", () => {
  fc.assert(fc.property(ids, fc.stringMatching(/^[A-Z][a-z]{0,4}$/), (live, newcomer) => {
    const p = new Partition(SPACE);
    p.setNodes(live);
    const before = owners(p);
    const moved = p.join(newcomer);
    const after = owners(p);
    let changed = 0;
    for (let b = 0; b < p.blocks; b++) {
      if (after[b] !== before[b]) {
        changed++;
        assert.equal(after[b], newcomer);
      }
    }
    assert.equal(changed, moved);
    assert.equal(moved, p.shares().get(newcomer));
  }), { numRuns: runs });
});

test("a node leaving moves exactly its own blocks, and no other block changes owner", () => {
  fc.assert(fc.property(ids.filter((l) => l.length >= 2), fc.nat(), (live, pick) => {
    const p = new Partition(SPACE);
    p.setNodes(live);
    const gone = live[pick % live.length];
    const before = owners(p);
    const moved = p.leave(gone);
    const after = owners(p);
    for (let b = 0; b < p.blocks; b++) {
      if (before[b] === gone) assert.ok(after[b] !== gone && after[b] !== undefined && live.includes(after[b]!));
      else assert.equal(after[b], before[b]);
    }
    assert.equal(moved, before.filter((o) => o === gone).length);
  }), { numRuns: runs });
});

test("every block's runner-up is the owner it would have without its owner, whatever the history, and a newcomer's blocks have their previous owner as runner-up", () => {
  fc.assert(fc.property(ids.filter((l) => l.length >= 2), ids, fc.stringMatching(/^[A-Z][a-z]{0,4}$/), (live, extra, newcomer) => {
    const p = new Partition(SPACE);
    for (const id of [...extra, ...live]) p.join(id);
    for (const id of extra) if (!live.includes(id)) p.leave(id);
    for (let b = 0; b < p.blocks; b++) {
      const without = new Partition(SPACE);
      without.setNodes(live.filter((id) => id !== p.owner(b)));
      assert.equal(p.runnerUp(b), without.owner(b));
    }
    const before = owners(p);
    p.join(newcomer);
    for (let b = 0; b < p.blocks; b++) if (p.owner(b) === newcomer) assert.equal(p.runnerUp(b), before[b]);
  }), { numRuns: Math.max(5, runs >> 3) });
});

test("blocks spread over the nodes: with 10 nodes every node owns within 25% of a tenth", () => {
  const p = new Partition({ prefixes: ["203.0.113.0/24"], ports: [1024, 65535], blockPorts: 256 });
  p.setNodes(Array.from({ length: 10 }, (_, i) => `n${i}`));
  for (const [id, n] of p.shares()) assert.ok(Math.abs(n - p.blocks / 10) < p.blocks / 40, `${id} owns ${n} of ${p.blocks}`);
});

test("the owner and runner-up tables give the data plane's node index of each block's owner and runner-up, 0xffff for none", () => {
  const p = new Partition(SPACE);
  assert.ok(p.ownerTable(() => 0).every((v) => v === 0xffff));
  p.setNodes(["a"]);
  assert.ok(p.runnerUpTable(() => 0).every((v) => v === 0xffff));
  p.setNodes(["a", "b"]);
  const index = (id: string) => (id === "a" ? 7 : 9);
  const owners = p.ownerTable(index);
  const seconds = p.runnerUpTable(index);
  for (let b = 0; b < p.blocks; b++) {
    assert.equal(owners[b], p.owner(b) === "a" ? 7 : 9);
    assert.equal(seconds[b], 16 - owners[b]);
  }
});
