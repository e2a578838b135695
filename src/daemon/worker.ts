// One forwarding worker of `pias run` (a worker_thread; src/daemon/workers.ts
// starts them): its own core instance with its own slice of the NAT port
// range, its own ring and pump, and its own queue of the multi-queue TUN
// device -- the kernel steers to it exactly the packets of the flows it owns
// (native/steer.bpf.c) -- or its own AF_XDP sockets, one per RX queue it
// owns, in a UMEM in its core's memory (the addon hands it the NAT replies
// that arrived on another worker's queue, and hands over those it got for
// another: native/xdp.cc).
//
// The main thread drives it by messages (WorkerRequest): control calls,
// applied to this core as to every other; statistics; host frames to send;
// packets to re-inject; stop. It hands the main thread what the core gives
// to the host (control messages, unresolved groups), copied. Never does
// anything per packet that the core or the pump does not already do.

import { parentPort, workerData } from "node:worker_threads";
import { Link, Verdict } from "../../assembly/shared/abi.js";
import type { PiasConfig } from "../config/types.js";
import { DataPlane } from "../core/dataplane.js";
import type { PacketIO } from "../io/backend.js";
import { TunBackend, type SteeringConfig } from "../io/tun-backend.js";
import { XdpBackend } from "../io/xdp-backend.js";
import { Pump } from "./pump.js";
import type { WorkerInit, WorkerReply, WorkerRequest } from "./workers.js";

const init = workerData as WorkerInit;
const port = parentPort!;
const post = (m: WorkerReply): void => port.postMessage(m);

/** The config with this worker's slice of the NAT port range. */
const sliced = (c: PiasConfig): PiasConfig => ({ ...c, proxy: { ...c.proxy, natPorts: init.slice } });

async function start(): Promise<void> {
  const dp = DataPlane.fromConfig(sliced(init.config), { natPortsShared: init.config.proxy.natPorts });
  const d = init.config.daemon;
  const tun = init.xdp ? null : TunBackend.open({ name: init.tunName, routes: [], io: init.io, offload: init.offload, multiQueue: true, refuse: init.refuse });
  const xdp = init.xdp
    ? await XdpBackend.open({
      interfaces: d.xdpInterfaces, mode: d.xdpMode, served: [], dp, batch: d.batch, worker: init.xdp,
      onFatal: (err) => post({ type: "error", message: `worker ${init.index}: ${err.message}`, fatal: true, code: err.code }),
    })
    : null;
  const io: PacketIO = (tun ?? xdp)!;
  const ring = io.ring ?? dp.createRing(d.batch, io.capacity, io.linkType === Link.VNET);
  const pump = new Pump(dp, io, ring, (r, slot) => post({ type: "host", frame: r.packet(slot).slice(), work: r.reason(slot) }));
  const REINJECT = 64;
  let reinjectBatch: ReturnType<DataPlane["createBatch"]> | null = null;

  port.on("message", (m: WorkerRequest) => {
    try {
      switch (m.type) {
        case "call": {
          const args = m.method === "applyConfig" ? [sliced(m.args[0] as PiasConfig), ...m.args.slice(1)] : m.args;
          (dp as unknown as Record<string, (...a: unknown[]) => unknown>)[m.method](...args);
          break;
        }
        case "stats":
          post({ type: "stats", id: m.id, counters: dp.counters(), targets: dp.targetStats(), io: { ...io.stats(), hostUnhandled: pump.hostUnhandled }, levels: io.levels?.() ?? {} });
          break;
        case "steer":
          post({ type: "steered", why: tun ? tun.attachSteering(m.cfg as SteeringConfig) : "AF_XDP steers in its XDP program" });
          break;
        case "send":
          for (const f of m.frames) io.sendOne(f);
          break;
        case "reinject": {
          // queued packets of a group that was unresolved: through this core, which then owns their flows
          const batch = (reinjectBatch ??= dp.createBatch(REINJECT, REINJECT * (io.capacity + 256)));
          for (let i = 0; i < m.frames.length; i += REINJECT) {
            batch.clear();
            for (const f of m.frames.slice(i, i + REINJECT)) batch.add(f, { link: io.linkType });
            dp.process(batch);
            for (let j = 0; j < batch.count; j++) if (batch.verdict(j) === Verdict.Forward) io.sendOne(batch.packet(j));
            for (const s of dp.emittedSegments()) io.sendOne(s);
          }
          break;
        }
        case "stop":
          io.close();
          port.close();
          break;
      }
    } catch (err) {
      post({ type: "error", message: `worker ${init.index}: ${m.type}${m.type === "call" ? ` ${m.method}` : ""}: ${(err as Error).message}` });
    }
  });
  post({ type: "ready", name: tun?.name ?? "", features: tun?.features, description: io.description, zerocopy: xdp?.sockets.info().interfaces.map((i) => i.zerocopy) });
  pump.start();
  pump.drain();
}

start().catch((err: unknown) => {
  const code = (err as { code?: unknown }).code;
  post({ type: "error", message: (err as Error).message, fatal: true, code: typeof code === "string" ? code : undefined });
});
