// The proxy side of test/io/xdp.test.ts, run inside the proxy's network
// namespace (`ip netns exec NS node --import tsx test/io/xdp-child.ts
// CONFIG_JSON`): the daemon's own pieces -- a DataPlane from the config, the
// AF_XDP backend on daemon.xdpInterfaces and the pump -- driven by one-line
// commands on stdin, each answered by one JSON line on stdout. The assertions
// live in the test; this only runs the data path and reports.
//
// Commands:
//   report        addon info, frame states, addon and core counters, the memory's address and size
//   grow MIB      grow the core's memory by MIB and add 500 groups (control-plane heap), then report
//   refill 0|1    stop or resume lending frames to the fill rings
//   mark          from now on, before sending, overwrite the first UDP payload byte of every
//                 packet forwarded toward a target with "!" (and zero its UDP checksum)
//   send TEXT     send a UDP datagram the host built, 10.255.0.1:53 -> 10.9.0.2:7777, through sendOne
//   badargs       call the addon with bad arguments; report what each threw
//   move          call the addon with a memory view that is not the registered one
//   quit          close the backend (detaches the program) and exit

import { createInterface } from "node:readline";
import { AuxFlag, Desc, Layout, Verdict } from "../../assembly/shared/abi.js";
import { validateConfig } from "../../src/config/validate.js";
import { DataPlane } from "../../src/core/dataplane.js";
import type { PacketRing } from "../../src/core/ring.js";
import { Pump } from "../../src/daemon/pump.js";
import { tunRoutes } from "../../src/daemon/daemon.js";
import { XdpBackend } from "../../src/io/xdp-backend.js";
import { memoryAddress } from "../../src/io/xdp.js";
import { parseAddress } from "../../src/net/addr.js";
import { buildPacket, withEthernet } from "../helpers/packets.js";

const config = validateConfig(JSON.parse(process.argv[2]));
const dp = DataPlane.fromConfig(config);
const io = await XdpBackend.open({
  interfaces: config.daemon.xdpInterfaces, mode: config.daemon.xdpMode, served: tunRoutes(config), dp, batch: config.daemon.batch,
});
const pump = new Pump(dp, io, io.ring!);
pump.start();

let marking = false;
const send = io.send.bind(io);
io.send = (ring: PacketRing, n: number): void => {
  if (marking) {
    const mem = ring.memory();
    const view = new DataView(mem.buffer);
    for (let i = 0; i < n; i++) {
      const d = ring.desc + i * Layout.DESC_SIZE;
      if (ring.verdict(i) !== Verdict.Forward || !(view.getUint16(d + Desc.AUX, true) & AuxFlag.ToTarget)) continue;
      const p = ring.packet(i);
      const ihl = (p[14] & 15) * 4;
      if (p[12] !== 8 || p[13] !== 0 || p[14 + 9] !== 17) continue; // IPv4 UDP only
      const udp = p.byteOffset + 14 + ihl;
      mem[udp + 6] = 0; // no UDP checksum (IPv4 allows it)
      mem[udp + 7] = 0;
      mem[udp + 8] = "!".charCodeAt(0);
    }
  }
  send(ring, n);
};

function report(): Record<string, unknown> {
  return {
    info: io.sockets.info(),
    frames: io.sockets.frames(),
    stats: io.stats(),
    counters: dp.counters(),
    memoryAddress: memoryAddress(dp.memory()),
    memoryBytes: dp.memoryBytes(),
  };
}

const out = (o: unknown): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
out({ ready: true, ...report() });

const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  const [cmd, arg] = line.trim().split(/\s+/);
  try {
    if (cmd === "report") out(report());
    else if (cmd === "grow") {
      const buffer = dp.memory().buffer;
      dp.allocBuffer(Number(arg) << 20);
      for (let i = 0; i < 500; i++) dp.addGroup({ protocol: "udp", address: `198.18.${i >> 8}.${i & 255}`, port: 7, targets: [{ address: "10.9.0.3", port: 7 }] });
      out({ ...report(), bufferReplaced: buffer !== dp.memory().buffer });
    } else if (cmd === "refill") {
      io.sockets.setRefill(arg === "1");
      out(report());
    } else if (cmd === "mark") {
      marking = true;
      out({ marking });
    } else if (cmd === "send") {
      const ip = buildPacket({ family: 4, proto: "udp", src: parseAddress("10.255.0.1").bytes, dst: parseAddress("10.9.0.2").bytes,
        sport: 53, dport: 7777, payload: new TextEncoder().encode(`${arg}\n`) });
      out({ sent: io.sendOne(withEthernet(ip)), stats: io.stats() });
    } else if (cmd === "badargs") {
      const x = io.sockets;
      const mem = dp.memory();
      const desc = io.ring!.desc;
      const calls: [string, () => unknown][] = [
        ["rx with a string for the memory", () => x.rx("mem" as never, desc, Layout.DESC_SIZE, 1)],
        ["rx with a negative descriptor address", () => x.rx(mem, -1, Layout.DESC_SIZE, 1)],
        ["rx with an 8-byte stride", () => x.rx(mem, desc, 8, 1)],
        ["rx with descriptors past the memory", () => x.rx(mem, mem.length - 16, Layout.DESC_SIZE, 4)],
        ["tx of more frames than rx returned", () => x.tx(mem, desc, Layout.DESC_SIZE, 999)],
        ["setRoutes with a 35-byte route", () => x.setRoutes(new Uint8Array(35), new Uint8Array(0))],
        ["setRoutes with a route to interface 9", () => x.setRoutes(Uint8Array.from([4, 24, 9, 0, ...new Array(32).fill(0)]), new Uint8Array(0))],
        ["setServed with family 5", () => x.setServed(Uint8Array.from([24, 5, ...new Array(16).fill(0)]))],
        ["sendFrame of 3 bytes", () => x.sendFrame(mem, new Uint8Array(3))],
      ];
      out(calls.map(([name, f]) => {
        try {
          f();
          return { name, threw: null };
        } catch (err) {
          return { name, threw: (err as Error).name, message: (err as Error).message };
        }
      }));
    } else if (cmd === "move") {
      try {
        io.sockets.rx(new Uint8Array(dp.memoryBytes()), io.ring!.desc, Layout.DESC_SIZE, 1);
        out({ moved: false });
      } catch (err) {
        out({ moved: true, code: (err as NodeJS.ErrnoException).code, message: (err as Error).message, info: io.sockets.info() });
      }
    } else if (cmd === "quit") {
      io.close();
      out({ closed: true });
      process.exit(0);
    } else out({ error: `unknown command ${cmd}` });
  } catch (err) {
    out({ error: (err as Error).message });
  }
});
