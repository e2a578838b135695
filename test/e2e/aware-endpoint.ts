// A PIAS-aware target's tunnel endpoint in user space, for namespaces whose
// kernel has no ipip module: IP-in-IP packets to this host are policy-routed
// into a TUN device (ip rule ipproto 4); this takes each one out of its outer
// header and writes the inner packet back, for the kernel to deliver to the
// local server (the group's TA is on lo). The server answers the client
// directly from the TA (direct server return).
//
// usage: node --import tsx test/e2e/aware-endpoint.ts LOCAL_ADDR
// Prints "ready" when set up; runs until killed.

import { spawnSync } from "node:child_process";
import { TunDevice } from "../../src/io/tun.js";

const local = process.argv[2];
const ip = (...args: string[]): void => {
  const r = spawnSync("ip", args, { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`ip ${args.join(" ")}: ${r.stderr}`);
};

const tun = TunDevice.open({ name: "aware%d" });
ip("link", "set", tun.name, "mtu", "65535", "up");
ip("route", "add", `${local}/32`, "dev", tun.name, "table", "100");
ip("rule", "add", "pref", "10", "ipproto", "4", "to", `${local}/32`, "lookup", "100");
ip("rule", "add", "pref", "20", "lookup", "local");
ip("rule", "del", "pref", "0");
spawnSync("sysctl", ["-qw", "net.ipv4.ip_forward=1", `net.ipv4.conf.${tun.name}.rp_filter=0`, "net.ipv4.conf.all.rp_filter=0"]);

// fixed slots: descriptor i at 32 i (OFF, LEN), packet at 65536 (i + 1)
const SLOTS = 16;
const mem = new Uint8Array(65536 * (SLOTS + 1));
const view = new DataView(mem.buffer);
let decapsulated = 0;
tun.onReadable(() => {
  for (;;) {
    for (let i = 0; i < SLOTS; i++) {
      view.setUint32(i * 32, 65536 * (i + 1), true);
      view.setUint32(i * 32 + 4, 65535, true);
    }
    const n = tun.readBatch(mem, 0, 32, SLOTS);
    for (let i = 0; i < n; i++) {
      const off = view.getUint32(i * 32, true);
      const len = view.getUint32(i * 32 + 4, true);
      const p = mem.subarray(off, off + len);
      if (p[0] >> 4 !== 4 || p[9] !== 4) continue; // only IPv4-in-IPv4
      const inner = p.subarray((p[0] & 15) * 4);
      if (tun.write(inner)) decapsulated++;
    }
    if (n < SLOTS) break;
  }
});
process.on("SIGTERM", () => {
  console.log(`decapsulated ${decapsulated}`);
  tun.close();
  process.exit(0);
});
console.log(`ready ${tun.name}`);
