// One forwarding worker per core for `pias run` (daemon.workers > 1): the
// main thread starts the workers (src/daemon/worker.ts), each with its own
// core and its own slice of the NAT port range.
//
// On TUN each worker has its own queue of one multi-queue TUN device, and
// the kernel steers every packet to the worker that owns its flow (the
// steering program, native/steer.bpf.c). On AF_XDP each worker has the
// sockets of its own RX queues (q % workers == its index) in a UMEM in its
// own core's memory; the main thread holds the XDP program, which marks a
// NAT reply with the worker owning its port, and a worker hands a frame it
// does not own to its owner through a ring in shared memory (native/xdp.cc:
// the kernel cannot redirect across queues). The main
// thread keeps health checks, metrics (summed over the workers), reload and
// the control plane: every control call goes to a control copy of the data
// plane here (which checks it and answers) and then to every worker.
//
// Where the kernel refuses a multi-queue device or the steering program, or
// the build lacks it, or an XDP interface has fewer RX queues than workers,
// start() says so in one log line and returns null: the daemon then runs
// one worker, in this thread, as before. Never touches a packet on the main
// thread.

import { Worker } from "node:worker_threads";
import type { Logger } from "pino";
import type { PiasConfig } from "../config/types.js";
import { DataPlane, type Counters, type TargetStats } from "../core/dataplane.js";
import type { PacketRing } from "../core/ring.js";
import type { PacketIO } from "../io/backend.js";
import type { TunFeatures } from "../io/tun.js";
import { rerouteTun, routeIntoTun, TUN_MTU, type SteeringConfig } from "../io/tun-backend.js";
import { handoffRings, XdpError, XdpProgram, xdpUnavailable, type XdpWorkerHandles } from "../io/xdp.js";
import { packPrefixes, rxQueues, XDP_FRAME_SIZE } from "../io/xdp-backend.js";
import { PiasError } from "../errors.js";

/** What a worker starts with (its workerData). */
export interface WorkerInit {
  index: number;
  config: PiasConfig;
  /** Its NAT port slice. */
  slice: [number, number];
  /** The device: the configured pattern for worker 0, then the name the kernel gave. */
  tunName: string;
  io: "auto" | "readv" | "uring";
  offload: boolean;
  refuse: number;
  /** On AF_XDP (then the TUN fields are unused): this worker's part of the pool's program and hand-off rings. */
  xdp?: XdpWorkerHandles;
}

export type WorkerRequest =
  | { type: "call"; method: string; args: unknown[] }
  | { type: "stats"; id: number }
  | { type: "steer"; cfg: object }
  | { type: "send"; frames: Uint8Array[] }
  | { type: "reinject"; frames: Uint8Array[] }
  | { type: "stop" };

export type WorkerReply =
  | { type: "ready"; name: string; features?: TunFeatures; description: string; zerocopy?: boolean[] }
  | { type: "stats"; id: number; counters: Counters; targets: TargetStats[]; io: Record<string, number>; levels: Record<string, number> }
  | { type: "steered"; why: string | null }
  | { type: "host"; frame: Uint8Array; work: number }
  | { type: "error"; message: string; fatal?: boolean; code?: string };

/** Control calls of DataPlane that change its state: made on the control copy, then on every worker. */
const FANNED = new Set([
  "addGroup", "removeGroup", "addTarget", "removeTarget", "setTargetUp", "setTargetWeight", "setPolicy", "setScopes",
  "setGroupPending", "setPeers", "setAnycastPrefixes", "setControlPort", "applyConfig", "applyGroups", "expireIdle",
  "updateTargets", "setResolveUnknown", "setResolveBudget",
]);

/** Flows the control copy may hold: it never forwards, it only answers control calls. */
const CONTROL_FLOWS = 1024;

const controlConfig = (c: PiasConfig): PiasConfig => ({ ...c, capacity: { ...c.capacity, flows: CONTROL_FLOWS } });

/** Worker w's slice of the NAT port range [min, max] split n ways (the last takes the remainder). */
export function portSlice(range: readonly [number, number], w: number, n: number): [number, number] {
  const size = Math.floor((range[1] - range[0] + 1) / n);
  const lo = range[0] + w * size;
  return [lo, w === n - 1 ? range[1] : lo + size - 1];
}

/** Statistics of the whole pool, and of each worker. */
export interface PoolSnapshot {
  counters: Counters;
  targets: TargetStats[];
  io: Record<string, number>;
  /** The backends' buffer levels (AF_XDP: UMEM frames by state), summed. */
  levels: Record<string, number>;
  workers: Counters[];
}

export type HostFrameHandler = (frame: Uint8Array, work: number, worker: number) => void;

/** What the pool's main-thread PacketIO is beyond its workers. */
interface PoolIo {
  description: string;
  linkType: number;
  capacity: number;
  serve?: (prefixes: readonly string[]) => void;
  /** Counters of the main thread's own part (the XDP program's). */
  stats?: () => Record<string, number>;
  /** After the workers are gone. */
  close?: () => void;
}

export class WorkerPool {
  /** The data plane the daemon, health checks and cluster call: the control copy, fanned out to the workers. */
  readonly dp: DataPlane;
  /** The main thread's PacketIO: host frames leave through worker 0's queue; it reads nothing. */
  readonly io: PacketIO;
  private onHost: HostFrameHandler | null = null;
  private nextId = 1;
  private readonly waiting = new Map<number, { left: number; replies: Extract<WorkerReply, { type: "stats" }>[]; done: (r: Extract<WorkerReply, { type: "stats" }>[]) => void }>();

  private constructor(
    private readonly workers: Worker[],
    control: DataPlane,
    private readonly pio: PoolIo,
    private readonly log: Logger,
  ) {
    const post = (m: WorkerRequest): void => {
      for (const w of this.workers) w.postMessage(m);
    };
    this.dp = new Proxy(control, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver);
        if (typeof v !== "function") return v;
        if (typeof prop !== "string" || !FANNED.has(prop)) return v.bind(target);
        return (...args: unknown[]) => {
          // the control copy is small (CONTROL_FLOWS): a reload is checked against its own size
          const mine = prop === "applyConfig" ? [controlConfig(args[0] as PiasConfig), ...args.slice(1)] : args;
          const r = v.apply(target, mine); // throws here, before any worker sees a call the control copy refused
          post({ type: "call", method: prop, args });
          return r;
        };
      },
    });
    const first = this.workers[0];
    this.io = {
      description: pio.description,
      linkType: pio.linkType,
      capacity: pio.capacity,
      ...(pio.serve ? { serve: pio.serve } : {}),
      read: () => 0,
      send: (_ring: PacketRing, _n: number) => {},
      sendOne: (frame: Uint8Array) => {
        first.postMessage({ type: "send", frames: [frame] } satisfies WorkerRequest);
        return true;
      },
      onReadable: () => {},
      close: () => {},
      stats: () => pio.stats?.() ?? {},
    };
    this.workers.forEach((w, i) => w.on("message", (m: WorkerReply) => this.message(m, i)));
  }

  /**
   * Start `n` workers on one multi-queue TUN device, route into it and attach
   * the steering program. Null (after one log line saying why) when the
   * kernel or the build refuses any of it; the caller runs one worker then.
   */
  static async start(config: PiasConfig, n: number, routes: readonly string[], log: Logger, refuse = 0): Promise<WorkerPool | null> {
    const d = config.daemon;
    const started: Worker[] = [];
    const stopAll = (): Promise<void> => stopWorkers(started);
    let name = d.tunName;
    let linkType = 101;
    let description = "";
    try {
      for (let i = 0; i < n; i++) {
        const init: WorkerInit = { index: i, config, slice: portSlice(config.proxy.natPorts, i, n), tunName: name, io: d.tunIo, offload: d.tunOffload, refuse };
        const w = new Worker(workerUrl(), { workerData: init });
        started.push(w);
        const ready = await reply(w, "ready");
        const features = ready.features!;
        if (i === 0) for (const note of features.notes) log.warn(note); // the others' are the same
        if (!features.multiQueue) {
          log.warn({ workers: n }, "one worker: the TUN device is not multi-queue");
          await stopAll();
          return null;
        }
        if (i === 0) {
          name = ready.name;
          linkType = features.vnetHdr ? 65000 : 101;
          description = `${ready.description}, ${n} workers`;
          routeIntoTun(name, routes);
        }
      }
      started[0].postMessage({ type: "steer", cfg: steerConfig(config, n) } satisfies WorkerRequest);
      const steered = await reply(started[0], "steered");
      if (steered.why !== null) {
        log.warn({ workers: n }, `one worker: no TUN steering program: ${steered.why}`);
        await stopAll();
        return null;
      }
    } catch (err) {
      await stopAll();
      throw err;
    }
    const control = DataPlane.fromConfig(controlConfig(config));
    let routed = routes;
    const serve = routes.length ? (next: readonly string[]) => void (rerouteTun(name, routed, next), (routed = next)) : undefined;
    return new WorkerPool(started, control, { description, linkType, capacity: TUN_MTU, serve }, log);
  }

  /**
   * Start `n` workers on AF_XDP: load the program here (with `served` and the
   * workers' port slices), start the workers (each binds its queues' sockets
   * into the program's map), then attach the program. Null (after one log
   * line) when an interface has fewer RX queues than workers.
   */
  static async startXdp(config: PiasConfig, n: number, served: readonly string[], log: Logger): Promise<WorkerPool | null> {
    const d = config.daemon;
    const why = xdpUnavailable();
    if (why) throw new XdpError(`the AF_XDP backend is unavailable: ${why}`);
    const short = d.xdpInterfaces.find((i) => rxQueues(i) < n);
    if (short) {
      log.warn({ workers: n }, `one worker: ${short} has ${rxQueues(short)} RX queue${rxQueues(short) > 1 ? "s" : ""}, fewer than the ${n} workers (one per queue)`);
      return null;
    }
    const program = XdpProgram.open({ interfaces: d.xdpInterfaces, served: packPrefixes(served), steer: steerConfig(config, n) });
    // PIAS_XDP_HANDOFF_SLOTS: smaller rings (the test of a full ring's drops)
    const rings = handoffRings(n, Number(process.env.PIAS_XDP_HANDOFF_SLOTS) || undefined);
    const { xsks, wake } = program.handles();
    const started: Worker[] = [];
    const zerocopy = d.xdpInterfaces.map(() => true);
    try {
      for (let i = 0; i < n; i++) {
        const init: WorkerInit = {
          index: i, config, slice: portSlice(config.proxy.natPorts, i, n), tunName: "", io: d.tunIo, offload: false, refuse: 0,
          xdp: { index: i, count: n, xsks, wake, ...rings },
        };
        const w = new Worker(workerUrl(), { workerData: init });
        started.push(w);
        const ready = await reply(w, "ready");
        ready.zerocopy?.forEach((z, k) => (zerocopy[k] &&= z));
      }
      program.attach(d.xdpMode);
    } catch (err) {
      await stopWorkers(started);
      program.close();
      throw err;
    }
    const ifs = program.info().interfaces.map((f, k) => `${f.name} (${f.mode}, ${zerocopy[k] ? "zero-copy" : "copy"}, ${f.queues} queues)`);
    const control = DataPlane.fromConfig(controlConfig(config));
    return new WorkerPool(started, control, {
      description: `xdp ${ifs.join(", ")}, ${n} workers`,
      linkType: 1,
      capacity: XDP_FRAME_SIZE - 256,
      serve: (prefixes) => program.setServed(packPrefixes(prefixes)),
      stats: () => program.stats(),
      close: () => program.close(),
    }, log);
  }

  /** Where the frames the workers' cores hand to the host go (the cluster, or a count). */
  setHostHandler(h: HostFrameHandler): void {
    this.onHost = h;
  }

  /** Run `frames` through worker w's core (packets an unresolved group queued) and send what it forwards. */
  reinject(frames: Uint8Array[], w: number): void {
    this.workers[Math.min(w, this.workers.length - 1)].postMessage({ type: "reinject", frames } satisfies WorkerRequest);
  }

  /** Counters, target statistics and I/O counts summed over the workers, and each worker's counters. */
  async snapshot(): Promise<PoolSnapshot> {
    const id = this.nextId++;
    const replies = await new Promise<Extract<WorkerReply, { type: "stats" }>[]>((done) => {
      this.waiting.set(id, { left: this.workers.length, replies: [], done });
      for (const w of this.workers) w.postMessage({ type: "stats", id } satisfies WorkerRequest);
    });
    const workers = replies.map((r) => r.counters);
    const io = { ...sumRecords(replies.map((r) => r.io)), ...this.pio.stats?.() };
    return { counters: sumCounters(workers), targets: sumTargets(replies.map((r) => r.targets)), io, levels: sumRecords(replies.map((r) => r.levels)), workers };
  }

  private message(m: WorkerReply, i: number): void {
    if (m.type === "host") {
      if (this.onHost) this.onHost(m.frame, m.work, i);
    } else if (m.type === "stats") {
      const wait = this.waiting.get(m.id);
      if (!wait) return;
      wait.replies[i] = m;
      if (--wait.left === 0) {
        this.waiting.delete(m.id);
        wait.done(wait.replies);
      }
    } else if (m.type === "error") {
      this.log.error({ worker: i }, m.message);
      if (m.fatal) process.exit(1); // a worker's backend stopped (its core's memory moved under AF_XDP)
    }
  }

  /** Stop every worker: each closes its queue (the TUN device goes with the last); then the XDP program. */
  async close(): Promise<void> {
    await stopWorkers(this.workers);
    this.pio.close?.();
  }
}

/** What a steering program needs to find the worker owning a NAT port: the proxy's addresses, the range, the slices. */
function steerConfig(config: PiasConfig, n: number): SteeringConfig {
  const a = config.proxy;
  const slice = portSlice(a.natPorts, 0, n);
  return { proxy4: a.addressBytes, proxy6: a.address6Bytes, portMin: a.natPorts[0], portMax: a.natPorts[1], slice: slice[1] - slice[0] + 1, workers: n };
}

/** Ask each worker to close its queue and end; one that has not within 2 s is terminated. */
function stopWorkers(workers: readonly Worker[]): Promise<void> {
  return Promise.all(workers.map((w) => new Promise<void>((r) => {
    if (w.threadId < 0) return r(); // already gone
    w.once("exit", () => r());
    w.postMessage({ type: "stop" } satisfies WorkerRequest);
    setTimeout(() => void w.terminate(), 2000).unref();
  }))).then(() => {});
}

/** The worker module beside this one: worker.ts under tsx, worker.js when compiled. */
function workerUrl(): URL {
  return new URL(import.meta.url.endsWith(".ts") ? "./worker.ts" : "./worker.js", import.meta.url);
}

/** The first reply of `type` from `w`; rejects on an error reply or the worker's exit. */
function reply<T extends WorkerReply["type"]>(w: Worker, type: T): Promise<Extract<WorkerReply, { type: T }>> {
  return new Promise((resolve, reject) => {
    const onMessage = (m: WorkerReply): void => {
      if (m.type === type) {
        done();
        resolve(m as Extract<WorkerReply, { type: T }>);
      } else if (m.type === "error" && m.fatal) {
        done();
        // the worker's PiasError (opening the TUN needs root, ...) is the daemon's one-line error
        reject(m.code ? new PiasError(m.code, m.message) : new Error(m.message));
      }
    };
    const onExit = (code: number): void => {
      done();
      reject(new Error(`a worker exited (${code}) before it was ready`));
    };
    const onError = (err: Error): void => {
      done();
      reject(err);
    };
    const done = (): void => {
      w.off("message", onMessage);
      w.off("exit", onExit);
      w.off("error", onError);
    };
    w.on("message", onMessage);
    w.once("exit", onExit);
    w.once("error", onError);
  });
}

function sumRecords(rs: readonly Record<string, number>[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of rs) for (const [k, v] of Object.entries(r)) out[k] = (out[k] ?? 0) + v;
  return out;
}

function sumCounters(cs: readonly Counters[]): Counters {
  const out = sumRecords(cs.map(({ drops: _drops, ...rest }) => rest)) as unknown as Counters;
  out.drops = sumRecords(cs.map((c) => c.drops));
  return out;
}

function sumTargets(lists: readonly TargetStats[][]): TargetStats[] {
  const out = new Map<string, TargetStats>();
  for (const list of lists) {
    for (const t of list) {
      const k = `${t.group} ${t.endpoint}`;
      const s = out.get(k);
      if (!s) out.set(k, { ...t });
      else {
        s.packets += t.packets;
        s.activeFlows += t.activeFlows;
      }
    }
  }
  return [...out.values()];
}
