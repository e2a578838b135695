// `pias run`: one proxy serving its configured groups on live traffic. Wires
// the data plane to an I/O backend (TUN, pcap, AF_XDP) through the pump — or,
// with daemon.workers > 1 on TUN or AF_XDP, starts one forwarding worker per core
// (workers.ts) and keeps the rest here — runs the health checks, serves
// metrics, and handles reload (SIGHUP: what the backend serves follows the
// config) and drain (SIGTERM). With
// cluster.store, membership and the fleet configuration come from etcd
// (fleet.ts), and a change there is applied like a reload. Embedders can
// start a Daemon from a config file too.

import type { Server } from "node:http";
import { pino, type Logger } from "pino";
import { Link } from "../../assembly/shared/abi.js";
import { loadValidated } from "../config/load.js";
import { storeOf, type StoreConfig } from "../config/store.js";
import type { PiasConfig } from "../config/types.js";
import { validateConfig } from "../config/validate.js";
import { DataPlane, type Counters } from "../core/dataplane.js";
import type { PacketIO } from "../io/backend.js";
import { DaemonBgp, assertBgpReload } from "./bgp.js";
import { Cluster } from "./cluster.js";
import { Fleet, FLEET_TICK_MS } from "./fleet.js";
import { HealthChecker, type HealthChange } from "./health.js";
import { createMetrics, serveMetrics } from "./metrics.js";
import { Pump, type HostHandler } from "./pump.js";
import { WorkerPool, type PoolSnapshot } from "./workers.js";
import { TunRefuse } from "../io/tun.js";
import { PiasError } from "../errors.js";
import { OverlayNode, overlayCluster, overlayDataPlane } from "./overlay.js";
import type { ProxyRef } from "../control/message.js";

/** Flows are swept by the core as packets come; when traffic stops, this full sweep frees idle ones. */
const IDLE_SWEEP_MS = 30_000;

export interface DaemonOptions {
  configPath: string;
  logger?: Logger;
  /** The I/O backend; default: the one the config names (daemon.io). */
  io?: (config: PiasConfig, dp: DataPlane) => Promise<PacketIO>;
  /** Packets the core hands to the host (control messages, unresolved groups). Default: counted and dropped. */
  onHost?: HostHandler;
}

/** PIAS_TUN_REFUSE=multi-queue,steering,...: act as if the kernel refused these (the fall-back paths' tests). */
function refusedByEnv(): number {
  const names: Record<string, number> = { "multi-queue": TunRefuse.MULTI_QUEUE, steering: TunRefuse.STEERING, "vnet-hdr": TunRefuse.VNET_HDR, offload: TunRefuse.CSUM, uso: TunRefuse.USO4, uring: TunRefuse.URING };
  return (process.env.PIAS_TUN_REFUSE ?? "").split(",").reduce((m, n) => m | (names[n.trim()] ?? 0), 0);
}

/** What a proxy serves: its anycast prefixes (or its group addresses) and its own addresses (routed into a TUN, redirected by XDP). */
export function tunRoutes(config: PiasConfig): string[] {
  const routes = new Set<string>([...config.proxy.anycastPrefixes, ...(config.overlay?.prefixes ?? [])]);
  if (routes.size === 0) for (const g of config.groups) routes.add(`${g.address}/${g.family === 4 ? 32 : 128}`);
  if (config.proxy.address) routes.add(`${config.proxy.address}/32`);
  if (config.proxy.address6) routes.add(`${config.proxy.address6}/128`);
  return [...routes];
}

/** The proxy's file: parsed, and validated unless a store completes it (then the fleet merges first). */
function readLocal(path: string): { raw: unknown; store: StoreConfig | null; config: PiasConfig | null } {
  return loadValidated(path, (raw) => {
    const store = storeOf(raw);
    return { raw, store, config: store ? null : validateConfig(raw) };
  });
}

async function defaultIo(config: PiasConfig, dp: DataPlane): Promise<PacketIO> {
  const d = config.daemon;
  if (d.io === "xdp") {
    const { XdpBackend } = await import("../io/xdp-backend.js");
    return XdpBackend.open({
      interfaces: d.xdpInterfaces, mode: d.xdpMode, served: tunRoutes(config), dp, batch: d.batch,
      onFatal: (err) => {
        console.error(`pias: ${err.message}`);
        process.exit(1);
      },
    });
  }
  if (d.io === "pcap") {
    const { PcapBackend } = await import("../io/pcap-backend.js");
    return PcapBackend.open({ iface: d.pcapInterface!, filter: d.pcapFilter, config });
  }
  const { TunBackend } = await import("../io/tun-backend.js");
  // an overlay node tunnels whole packets in its frames: no super-packets, no partial checksums
  return TunBackend.open({ name: d.tunName, routes: d.routes ? tunRoutes(config) : [], io: d.tunIo, offload: d.tunOffload && !config.overlay, refuse: refusedByEnv() });
}

export class Daemon {
  readonly log: Logger;
  private readonly reloads = { ok: 0, rejected: 0 };
  private readonly timers: NodeJS.Timeout[] = [];
  private metricsServer: Server | null = null;
  private stopping: Promise<void> | null = null;
  /** With a store: the proxy's own file as parsed, which each fleet configuration is merged into. */
  private localRaw: unknown = null;
  /** The BGP announcements (null without a bgp section). */
  bgp: DaemonBgp | null = null;
  /** This proxy as an overlay node, when the config has an overlay section. */
  overlay: OverlayNode | null = null;

  private constructor(
    private readonly options: DaemonOptions,
    private config: PiasConfig,
    readonly dp: DataPlane,
    readonly io: PacketIO,
    /** The pump, when this thread forwards (one worker). */
    readonly pump: Pump | null,
    readonly health: HealthChecker,
    readonly cluster: Cluster | null,
    log: Logger,
    readonly fleet: Fleet | null,
    /** The workers, when daemon.workers > 1 (then `dp` is the control copy every call fans out from). */
    readonly pool: WorkerPool | null = null,
  ) {
    this.log = log;
  }

  /** The workers' figures as of the last refresh (metrics scrape). */
  private snap: PoolSnapshot | null = null;

  /** Counters of the data plane, summed over the workers. */
  async counters(): Promise<Counters> {
    if (!this.pool) return this.dp.counters();
    this.snap = await this.pool.snapshot();
    return this.snap.counters;
  }

  /** Load the config, open the backend, start forwarding. Throws (a PiasError, with a one-line message) when something cannot start. */
  static async start(options: DaemonOptions): Promise<Daemon> {
    const local = readLocal(options.configPath);
    const log = options.logger ?? pino({ level: local.config?.daemon.logLevel ?? "info", base: { name: "pias" } });
    const fleet = local.store ? new Fleet(local.store, log) : null;
    let config: PiasConfig, bgp: DaemonBgp | null, dp: DataPlane, io: PacketIO;
    let pool: WorkerPool | null = null;
    try {
      await fleet?.fetch();
      config = local.config ?? fleet!.configure(local.raw, options.configPath);
      if (!options.logger) log.level = config.daemon.logLevel;
      bgp = config.bgp ? DaemonBgp.prepare(config.bgp, log) : null;
      const d = config.daemon;
      // workers: on TUN or AF_XDP, unless the embedder brings its own backend or host handler, or an overlay node runs here
      const workers = d.workers > 1 && d.io !== "pcap" && !options.io && !options.onHost && !config.overlay;
      pool = !workers ? null : d.io === "xdp"
        ? await WorkerPool.startXdp(config, d.workers, tunRoutes(config), log)
        : await WorkerPool.start(config, d.workers, d.routes ? tunRoutes(config) : [], log, refusedByEnv());
      dp = pool ? pool.dp : DataPlane.fromConfig(config, overlayDataPlane(config));
      io = pool ? pool.io : await (options.io ?? defaultIo)(config, dp);
    } catch (err) {
      await pool?.close();
      fleet?.store.close();
      throw err;
    }
    let daemon: Daemon | undefined;
    const membership = fleet ? (self: ProxyRef) => fleet.attach(self, () => daemon?.fleetChanged()) : undefined;
    const oc = config.cluster && overlayCluster(config.cluster, config.overlay);
    const cluster = oc ? new Cluster(oc.cluster, config.proxy, dp, io, log, membership, oc.options) : null;
    const onHost = options.onHost ?? cluster?.handle ?? null;
    // nothing resolves groups unknown here: their packets are dropped as no-group (counted), not handed over
    if (!onHost) dp.setResolveUnknown(false);
    const pump = pool ? null : new Pump(dp, io, io.ring ?? dp.createRing(config.daemon.batch, io.capacity, io.linkType === Link.VNET), onHost);
    const health = new HealthChecker((c) => daemon?.healthChanged(c));
    daemon = new Daemon(options, config, dp, io, pump, health, cluster, log, fleet, pool);
    daemon.localRaw = local.raw;
    daemon.bgp = bgp;
    if (config.overlay && cluster) daemon.overlay = new OverlayNode(config.overlay, cluster.node.self.id, config.proxy.address!, cluster.node.overlay!, dp, log);
    if (pool) {
      let unhandled = 0;
      pool.setHostHandler((frame, work, worker) => (cluster ? cluster.handleFrame(frame, work, worker) : unhandled++));
      if (cluster) cluster.forwardVia = (frames, worker) => pool.reinject(frames, worker);
    }
    try {
      if (config.daemon.metrics) daemon.metricsServer = await serveMetrics(daemon.registry(), config.daemon.metrics, async () => void (await daemon.counters()));
    } catch (err) {
      await daemon.closeIo();
      fleet?.store.close();
      throw err;
    }
    health.configure(config.groups);
    cluster?.start();
    pump?.start();
    const sweep = setInterval(() => dp.expireIdle(Math.floor(Date.now() / 1000)), IDLE_SWEEP_MS);
    sweep.unref();
    daemon.timers.push(sweep);
    if (fleet) {
      await fleet.start(); // the other proxies, then this one in their views
      await fleet.join();
      const tick = setInterval(() => fleet.tick(), FLEET_TICK_MS);
      tick.unref();
      daemon.timers.push(tick);
    }
    for (const note of io.notes ?? []) log.warn(note);
    log.info({ io: io.description, groups: config.groups.length, targets: config.groups.reduce((n, g) => n + g.targets.length, 0), metrics: config.daemon.metrics }, "ready");
    pump?.drain(); // packets that arrived before the watch began
    void bgp?.start({ groups: () => daemon.config.groups, health: () => health.status() });
    return daemon;
  }

  private registry() {
    const snap = (): PoolSnapshot | null => (this.pool ? this.snap : null);
    return createMetrics({
      counters: () => snap()?.counters ?? this.dp.counters(),
      targets: () => snap()?.targets ?? this.dp.targetStats(),
      workers: () => snap()?.workers ?? [],
      io: () => snap()?.io ?? { ...this.io.stats(), hostUnhandled: this.pump?.hostUnhandled ?? 0 },
      ioLevels: () => snap()?.levels ?? this.io.levels?.() ?? {},
      health: () => this.health.status(),
      cluster: () => this.cluster,
      overlay: () => this.overlay?.status() ?? null,
      fleet: () => this.fleet,
      reloads: () => this.reloads,
      bgp: () => this.bgp?.status() ?? null,
    });
  }

  private async closeIo(): Promise<void> {
    if (this.pool) await this.pool.close();
    else this.io.close();
  }

  private healthChanged(c: HealthChange): void {
    try {
      this.dp.setTargetUp(c.group, c.target, c.up);
      this.bgp?.changed();
      if (c.up) this.log.info({ group: c.group, target: c.target }, "target up");
      else this.log.warn({ group: c.group, target: c.target, error: c.error }, "target down");
    } catch (err) {
      this.log.error({ group: c.group, target: c.target, err: (err as Error).message }, "cannot mark target");
    }
  }

  /**
   * Re-read the config file and apply what changed, keeping live flows. A
   * config that does not load, or changes what needs a restart, is rejected
   * with one log line and the running config stays. Returns whether it applied.
   */
  reload(): boolean {
    return this.apply("file", () => {
      const local = readLocal(this.options.configPath);
      if ((local.store === null) !== (this.fleet === null)) throw new Error("adding or removing cluster.store needs a restart");
      if (local.config) return local.config;
      this.localRaw = local.raw;
      return this.fleet!.configure(local.raw, this.options.configPath);
    });
  }

  /** The fleet configuration in the store changed: merge it into the file's and apply it like a reload. */
  fleetChanged(): boolean {
    return this.apply(`store revision ${this.fleet!.revision}`, () => this.fleet!.configure(this.localRaw, this.options.configPath));
  }

  /** Apply a new configuration, keeping live flows; the running one stays when it cannot be built or applied. */
  private apply(source: string, build: () => PiasConfig): boolean {
    let next: PiasConfig;
    try {
      next = build();
      const [lo, hi] = this.config.proxy.natPorts;
      if (this.pool && (next.proxy.natPorts[0] !== lo || next.proxy.natPorts[1] !== hi)) {
        throw new PiasError("ECONFIG", "proxy.natPorts: the workers' port slices need a restart to change");
      }
      assertBgpReload(this.config.bgp, next.bgp);
      // groups the cluster installed (joined targets, resolved JAPs) stay; of the cluster section, keys and joinable groups change now
      const summary = this.dp.applyConfig(next, this.cluster?.groupSpecs() ?? []);
      // the overlay group stays joinable (overlay settings need a restart)
      if (next.cluster) this.cluster?.update(overlayCluster(next.cluster, this.config.overlay).cluster);
      this.health.configure(next.groups);
      const served = tunRoutes(next);
      if ([...served].sort().join() !== tunRoutes(this.config).sort().join()) this.serve(served);
      // a target replaced by the reload starts up: the checker's verdict stands
      for (const h of this.health.status()) if (!h.up) this.dp.setTargetUp(h.group, h.target, false);
      this.config = next;
      if (next.bgp) void this.bgp?.reload(next.bgp);
      this.reloads.ok++;
      this.log.info({ source, ...summary }, "config reloaded");
      return true;
    } catch (err) {
      this.reloads.rejected++;
      this.log.error({ source, err: (err as Error).message }, "config reload rejected; the running config stays");
      return false;
    }
  }

  /** The backend serves `prefixes` from now on; a backend refusing it keeps what it served (one log line). */
  private serve(prefixes: readonly string[]): void {
    if (!this.io.serve) return;
    try {
      this.io.serve(prefixes);
      this.log.info({ prefixes }, "serving");
    } catch (err) {
      this.log.error({ prefixes, err: (err as Error).message }, "cannot change what the backend serves");
    }
  }

  /**
   * Drain and stop: stop health checks, keep forwarding while flows are live
   * (at most drainMs), then close the backend (its routes go with it) and the
   * metrics endpoint.
   */
  stop(drainMs = this.config.daemon.drainMs): Promise<void> {
    this.stopping ??= (async () => {
      this.health.stop();
      this.cluster?.stop(); // unregister at the RAPs: IAPs stop sending new flows here
      const bgpDone = this.bgp?.shutdown(); // GRACEFUL_SHUTDOWN while flows drain, then withdraw
      await this.fleet?.stop(); // revoke the lease: every view drops this proxy now
      const deadline = Date.now() + drainMs;
      this.log.info({ flows: (await this.counters()).flowsLive, drainMs }, "draining");
      while (Date.now() < deadline) {
        this.dp.expireIdle(Math.floor(Date.now() / 1000));
        if ((await this.counters()).flowsLive === 0) break;
        await new Promise((r) => setTimeout(r, Math.min(200, Math.max(1, deadline - Date.now()))));
      }
      await bgpDone;
      for (const t of this.timers) clearInterval(t);
      const c = await this.counters();
      await this.closeIo();
      await new Promise<void>((r) => (this.metricsServer ? this.metricsServer.close(() => r()) : r()));
      this.log.info({ packets: c.packets, forwarded: c.forwarded, dropped: c.dropped, flowsLive: c.flowsLive }, "stopped");
    })();
    return this.stopping;
  }
}
