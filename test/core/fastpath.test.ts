// The established-flow fast path (assembly/fastpath.ts) takes only what the
// general pipeline would give the same answer for: the cases where another
// stage claims a packet of a live flow first.

import { test } from "node:test";
import assert from "node:assert/strict";
import { HostWork, Verdict } from "../../assembly/shared/abi.js";
import { DataPlane, reasonName } from "../../src/core/dataplane.js";
import { run } from "../helpers/dataplane.js";
import { buildPacket } from "../helpers/packets.js";
import { OverlayNet, PORT, ip4 } from "../helpers/overlay.js";

const udp = (src: string, sport: number, dst: string, dport: number): Uint8Array =>
  buildPacket({ family: 4, proto: "udp", src: ip4(src), dst: ip4(dst), sport, dport, payload: new Uint8Array(40) });

test("a reply to a NAT binding whose port is the overlay's goes to the overlay, as the general pipeline sends it", () => {
  // one NAT port, the overlay's: the flow's binding is P:PORT
  const net = new OverlayNet([{ id: "n1", address: "10.255.0.1" }], { settings: { natPorts: [PORT, PORT] } });
  const n1 = net.node("n1");
  n1.dp.addGroup({ protocol: "udp", address: "198.51.100.10", port: 53, targets: [{ address: "192.0.2.11", port: 53 }] });
  const out = n1.one(udp("192.0.2.50", 4000, "198.51.100.10", 53));
  assert.equal(out.verdict, Verdict.Forward);
  assert.equal((out.out[20] << 8) | out.out[21], PORT, "the binding took the overlay's port");
  // the target's reply to P:PORT: a live flow's packet, and UDP to the overlay's port on the node's address
  for (let i = 0; i < 3; i++) {
    const reply = n1.one(udp("192.0.2.11", 53, "10.255.0.1", PORT));
    assert.equal(reply.verdict, Verdict.Drop, "reverse-NATed instead of going to the overlay");
    assert.match(reasonName(reply.reason), /^overlay-/);
  }
});

test("a reply to a NAT binding whose port is the control port goes to the host as a control message, as the general pipeline sends it", () => {
  const dp = DataPlane.create({ address: "10.255.0.1", natPorts: [7470, 7470], controlPort: 7470, capacity: { flows: 1024, groups: 4, targets: 4 } },
    [{ protocol: "udp", address: "198.51.100.10", port: 53, targets: [{ address: "192.0.2.11", port: 53 }] }]);
  const batch = dp.createBatch(4);
  const [out] = run(dp, batch, [udp("192.0.2.50", 4000, "198.51.100.10", 53)]);
  assert.equal(out.verdict, Verdict.Forward);
  for (let i = 0; i < 3; i++) {
    const [reply] = run(dp, batch, [udp("192.0.2.11", 53, "10.255.0.1", 7470)]);
    assert.equal(reply.verdict, Verdict.ToHost, "reverse-NATed instead of going to the host");
    assert.equal(reply.reason, HostWork.Control);
  }
});
