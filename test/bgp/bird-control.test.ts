// The BIRD control-socket client against a real BIRD 2 started on a
// temporary socket (static protocols only: no BGP, nothing leaves the host),
// and its parsers on literal replies.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { BirdControl, BirdError, neighborAddress, parseProtocols, type BirdReply } from "../../src/bgp/bird-control.js";
import { TestBird, birdUnavailable } from "../helpers/bird.js";

const reply = (lines: [number, string][]): BirdReply => ({ code: lines.at(-1)![0], lines: lines.map(([code, text]) => ({ code, text })) });

describe("parsers of BIRD replies", () => {
  test("parseProtocols reads every row of `show protocols`, with short and long times and BGP's state and last error", () => {
    const rows = parseProtocols(reply([
      [2002, "Name       Proto      Table      State  Since         Info"],
      [1002, "device1    Device     ---        up     04:33:23.640  "],
      [1002, "pias_203_0_113_0_24 Static     master4    down   2026-12-03 04:33:23.640  "],
      [1002, "pias_peer_10_0_0_1 BGP        ---        start  2026-12-03 04:33:23  Active        Socket: Connection refused"],
      [1002, "r1         BGP        ---        up     04:33:25.001  Established   "],
      [0, ""],
    ]));
    assert.deepEqual(rows.map((r) => [r.name, r.proto, r.state, r.since, r.info]), [
      ["device1", "Device", "up", "04:33:23.640", ""],
      ["pias_203_0_113_0_24", "Static", "down", "2026-12-03 04:33:23.640", ""],
      ["pias_peer_10_0_0_1", "BGP", "start", "2026-12-03 04:33:23", "Active Socket: Connection refused"],
      ["r1", "BGP", "up", "04:33:25.001", "Established"],
    ]);
  });

  test("neighborAddress reads `show protocols all NAME`, without a link-local address's interface", () => {
    assert.equal(neighborAddress(reply([[1006, "  BGP state:          Established"], [1006, "    Neighbor address: 10.0.0.1"], [0, ""]])), "10.0.0.1");
    assert.equal(neighborAddress(reply([[1006, "    Neighbor address: fe80::1%eth0"], [0, ""]])), "fe80::1");
    assert.equal(neighborAddress(reply([[0, ""]])), null);
  });
});

const skip = birdUnavailable();

describe("BirdControl against a real BIRD on a temporary socket", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "pias-birdc-"));
  const config = (extra = ""): string => [
    "router id 192.0.2.1;",
    "protocol device {}",
    ...Array.from({ length: 5 }, (_, i) => `protocol static s${i} { ipv4; route 192.0.2.${i * 8}/29 blackhole; }`),
    extra,
  ].join("\n");
  let bird: TestBird;
  let c: BirdControl;

  before(async () => {
    bird = new TestBird(null, "unit", dir, config());
    await bird.connection();
    c = await BirdControl.connect(bird.socket);
  });
  after(async () => {
    c?.close();
    await bird?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("the greeting gives BIRD's version", () => {
    assert.match(c.version, /^BIRD 2\.\d+/);
  });

  test("a table reply ends with 0000 and keeps each line's code, continuation lines inheriting it", async () => {
    const r = await c.command("show protocols");
    assert.equal(r.code, 0);
    assert.equal(r.lines[0].code, 2002);
    assert.ok(r.lines.slice(1, -1).every((l) => l.code === 1002), JSON.stringify(r.lines));
    assert.deepEqual(parseProtocols(r).map((p) => p.name), ["device1", "s0", "s1", "s2", "s3", "s4"]);
  });

  test("disable and enable answer with BIRD's codes: 0009 disabled, 0008 already disabled, 0011 enabled, 0010 already enabled", async () => {
    const codes = [];
    for (const cmd of ['disable "s1"', 'disable "s1"', 'enable "s1"', 'enable "s1"']) codes.push((await c.command(cmd)).lines[0].code);
    assert.deepEqual(codes, [9, 8, 11, 10]);
  });

  test("errors reject with BIRD's code and words (8003 no match, 8002 configuration, 9001 parse), and the connection stays usable", async () => {
    await assert.rejects(c.command('enable "nothing_here"'), (e: BirdError) => e.replyCode === 8003 && /No protocols match/.test(e.message));
    await assert.rejects(c.command(`configure check "${join(dir, "missing.conf")}"`), (e: BirdError) => e.replyCode === 8002 && /No such file/.test(e.message));
    await assert.rejects(c.command("frobnicate"), (e: BirdError) => e.replyCode === 9001 && /syntax error/.test(e.message) && !e.message.includes("\n"));
    assert.equal((await c.command("show status")).code, 13);
  });

  test("configure reads a new file (0003), and a file with an error is refused with the line BIRD names (8002)", async () => {
    const good = join(dir, "good.conf");
    writeFileSync(good, config("protocol static s9 { ipv4; route 192.0.2.200/29 blackhole; }"));
    assert.equal((await c.command(`configure "${good}"`)).code, 3);
    assert.ok(parseProtocols(await c.command("show protocols")).some((p) => p.name === "s9"));
    const bad = join(dir, "bad.conf");
    writeFileSync(bad, config("protocol static { ipv4; route 192.0.2.300/29 blackhole; }"));
    await assert.rejects(c.command(`configure "${bad}"`), (e: BirdError) => e.replyCode === 8002 && e.message.includes("bad.conf:"));
    assert.ok(parseProtocols(await c.command("show protocols")).some((p) => p.name === "s9"), "the previous configuration stays");
  });

  test("commands sent together are answered one by one, each with its own reply, in order", async () => {
    const names = ["s0", "s1", "s2", "s3", "s4"];
    const replies = await Promise.all([...names, ...names].map((n) => c.command(`show route protocol ${n}`)));
    replies.forEach((r, i) => assert.ok(r.lines.some((l) => l.text.includes(`[${names[i % 5]} `)), `reply ${i}: ${JSON.stringify(r.lines)}`));
  });

  test("a command with a line break is refused before it is sent", async () => {
    await assert.rejects(c.command("show status\ndown"), (e: BirdError) => e.replyCode === 0 && /one line/.test(e.message));
    assert.equal((await c.command("show status")).code, 13);
  });

  test("nothing at the path: connect rejects with one line naming the socket", async () => {
    await assert.rejects(BirdControl.connect(join(dir, "none.ctl")), (e: BirdError) => e instanceof BirdError && /none\.ctl: ENOENT/.test(e.message));
  });

  test("BIRD going away rejects the waiting command and every later one, and `open` turns false", async () => {
    const other = new TestBird(null, "gone", dir, config());
    const c2 = await other.connection();
    const pending = c2.command("show protocols all");
    const stopping = other.stop();
    await pending.catch(() => undefined); // answered or cut: either is fine, it must settle
    await stopping;
    await assert.rejects(c2.command("show status"), (e: BirdError) => e.replyCode === 0 && /closed/.test(e.message));
    assert.equal(c2.open, false);
  });
});
