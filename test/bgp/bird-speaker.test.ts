// BirdSpeaker brings a real BIRD 2 in line with the wanted prefix states
// through its control socket: every transition between withdrawn, announced
// and graceful, drift undone, missing protocols reported and never invented.
// BIRD runs on the host with static protocols only (nothing is sent).

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { prefixProtocols, prefixStatics, type PrefixState } from "../../src/bgp/bird-config.js";
import { BirdSpeaker } from "../../src/bgp/bird-speaker.js";
import { TestBird, birdUnavailable } from "../helpers/bird.js";

const skip = birdUnavailable();
const V4 = "203.0.113.0/24";
const V6 = "2001:db8:a::/48";

describe("BirdSpeaker against a real BIRD", { skip }, () => {
  const dir = mkdtempSync(join(tmpdir(), "pias-speaker-"));
  const text = (state: PrefixState = "withdrawn"): string =>
    ["router id 10.255.0.1;", "protocol device {}", prefixStatics(V4, state, ["65001:100"]), prefixStatics(V6, state)].join("\n");
  let bird: TestBird;
  let speaker: BirdSpeaker;

  before(async () => {
    bird = new TestBird(null, "speaker", dir, text());
    await bird.connection();
    speaker = new BirdSpeaker(bird.socket);
  });
  after(async () => {
    speaker?.close();
    await bird?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  /** What BIRD's table holds for a prefix: the protocol of its route and whether it carries 65535:0. */
  const inBird = async (prefix: string): Promise<string> => {
    const routes = await bird.routes(prefix);
    if (routes.length === 0) return "withdrawn";
    assert.equal(routes.length, 1, JSON.stringify(routes));
    const gs = routes[0].communities.includes("65535:0");
    assert.equal(routes[0].proto, gs ? prefixProtocols(prefix).graceful : prefixProtocols(prefix).normal);
    return gs ? "graceful" : "announced";
  };

  const states: PrefixState[] = ["withdrawn", "announced", "graceful"];
  for (const from of states) {
    for (const to of states) {
      test(`${from} -> ${to}: BIRD's table follows, for IPv4 and IPv6 at once`, async () => {
        await speaker.apply(new Map([[V4, from], [V6, from]]), await speaker.protocols());
        const r = await speaker.apply(new Map([[V4, to], [V6, to]]), await speaker.protocols());
        assert.deepEqual(r, { states: new Map([[V4, to], [V6, to]]), missing: [] });
        assert.equal(await inBird(V4), to);
        assert.equal(await inBird(V6), to);
      });
    }
  }

  test("the normal route keeps the configured community and the graceful one adds 65535:0 to it", async () => {
    await speaker.apply(new Map([[V4, "graceful"]]), await speaker.protocols());
    assert.deepEqual((await bird.routes(V4))[0].communities, ["65001:100", "65535:0"]);
    await speaker.apply(new Map([[V4, "announced"]]), await speaker.protocols());
    assert.deepEqual((await bird.routes(V4))[0].communities, ["65001:100"]);
  });

  test("drift is undone: after an operator's `configure` resets the protocols, the next pass announces again", async () => {
    await speaker.apply(new Map([[V4, "announced"]]), await speaker.protocols());
    const file = join(dir, "operator.conf");
    writeFileSync(file, text("withdrawn"));
    await bird.command(`configure "${file}"`);
    assert.equal(await inBird(V4), "withdrawn", "BIRD's configure reset it");
    await speaker.apply(new Map([[V4, "announced"]]), await speaker.protocols());
    assert.equal(await inBird(V4), "announced");
  });

  test("a prefix whose protocols BIRD lacks is reported missing (when wanted) and never invented", async () => {
    const r = await speaker.apply(new Map([["198.51.100.0/24", "announced"], ["192.0.2.0/24", "withdrawn"]]), await speaker.protocols());
    assert.deepEqual(r.missing, ["198.51.100.0/24"]);
    assert.equal(r.states.get("198.51.100.0/24"), "withdrawn");
    assert.deepEqual(await bird.routes("198.51.100.0/24"), []);
  });

  test("the connection is re-opened after it broke", async () => {
    (await speaker.connection()).close();
    assert.ok((await speaker.protocols()).some((p) => p.name === prefixProtocols(V4).normal));
  });
});
