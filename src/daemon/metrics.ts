// Prometheus metrics of a running proxy (prom-client), read from the data
// plane's counters when scraped: nothing is counted twice and nothing costs
// anything between scrapes. Served over HTTP at /metrics.

import { createServer, type Server } from "node:http";
import { Counter, Gauge, Registry, collectDefaultMetrics } from "prom-client";
import type { Counters, TargetStats } from "../core/dataplane.js";
import type { BgpStatus } from "./bgp.js";
import type { Cluster } from "./cluster.js";
import type { Fleet } from "./fleet.js";
import type { TargetHealth } from "./health.js";
import type { OverlayStatus } from "./overlay.js";

/** What the metrics read: the data plane and the daemon's own figures. */
export interface MetricsSource {
  /** The data plane's counters and per-target statistics (summed over the workers). */
  counters(): Counters;
  targets(): TargetStats[];
  /** Each worker's counters, with workers. */
  workers?(): Counters[];
  /** Called before each scrape (workers: fetch their figures). */
  refresh?(): Promise<void>;
  io(): Record<string, number>;
  /** The backend's buffer levels (AF_XDP: UMEM frames by state), if it has any. */
  ioLevels?(): Record<string, number>;
  health(): TargetHealth[];
  reloads(): { ok: number; rejected: number };
  cluster(): Cluster | null;
  /** The store link (cluster.store), or null. */
  fleet?(): Fleet | null;
  bgp?(): BgpStatus | null;
  /** The overlay node's figures, or null when this proxy is not one. */
  overlay?(): OverlayStatus | null;
}

/** A counter whose value is read from elsewhere at scrape time. */
function mirrored<T extends string>(reg: Registry, name: string, help: string, labelNames: readonly T[], read: () => [Partial<Record<T, string>>, number][]): void {
  new Counter({
    name, help, labelNames, registers: [reg],
    collect() {
      this.reset();
      for (const [labels, v] of read()) if (v > 0) this.inc(labels, v);
    },
  });
}

function gauge<T extends string>(reg: Registry, name: string, help: string, labelNames: readonly T[], read: () => [Partial<Record<T, string>>, number][]): void {
  new Gauge({
    name, help, labelNames, registers: [reg],
    collect() {
      this.reset();
      for (const [labels, v] of read()) this.set(labels, v);
    },
  });
}

export function createMetrics(src: MetricsSource): Registry {
  const reg = new Registry();
  collectDefaultMetrics({ register: reg, prefix: "pias_process_" });
  const c = () => src.counters();
  const one = (v: number): [Record<string, string>, number][] => [[{}, v]];
  mirrored(reg, "pias_packets_total", "Packets the data plane received", [], () => one(c().packets));
  mirrored(reg, "pias_bytes_total", "Bytes the data plane received", [], () => one(c().bytes));
  mirrored(reg, "pias_forwarded_packets_total", "Packets forwarded (rewritten, tunnelled or generated)", [], () => one(c().forwarded));
  mirrored(reg, "pias_dropped_packets_total", "Packets dropped, by reason", ["reason"], () => Object.entries(c().drops).map(([reason, v]) => [{ reason }, v]));
  mirrored(reg, "pias_to_host_packets_total", "Packets handed to the host (control messages, unresolved groups)", [], () => one(c().toHost));
  mirrored(reg, "pias_flows_created_total", "Flows created", [], () => one(c().flowsCreated));
  mirrored(reg, "pias_flows_expired_total", "Flows expired", [], () => one(c().flowsExpired));
  mirrored(reg, "pias_encapsulated_packets_total", "Packets sent into an IP-in-IP tunnel", [], () => one(c().encapsulated));
  mirrored(reg, "pias_decapsulated_packets_total", "Packets taken out of an IP-in-IP tunnel", [], () => one(c().decapsulated));
  mirrored(reg, "pias_icmp_translated_total", "ICMP errors translated for a NATed flow", [], () => one(c().icmpTranslated));
  mirrored(reg, "pias_icmp_generated_total", "ICMP errors generated (fragmentation needed / packet too big)", [], () => one(c().icmpGenerated));
  mirrored(reg, "pias_super_packets_total", "GSO super-packets received from an offloaded TUN (each NATed once, or segmented)", [], () => one(c().superPackets));
  mirrored(reg, "pias_segmented_total", "Super-packets segmented by the core (toward PIAS-aware targets)", [], () => one(c().segmented));
  mirrored(reg, "pias_segments_total", "Packets those segmentations made", [], () => one(c().segments));
  mirrored(reg, "pias_wrong_worker_packets_total", "Packets to the proxy's address that reached a worker not owning their NAT port (steering failed)", [], () => one(c().wrongWorker));
  const w = () => (src.workers?.() ?? []).map((c, i): [Record<string, string>, Counters] => [{ worker: String(i) }, c]);
  mirrored(reg, "pias_worker_packets_total", "Packets each worker's data plane received", ["worker"], () => w().map(([l, c]) => [l, c.packets]));
  mirrored(reg, "pias_worker_flows_created_total", "Flows each worker created", ["worker"], () => w().map(([l, c]) => [l, c.flowsCreated]));
  mirrored(reg, "pias_worker_wrong_worker_packets_total", "Packets that reached the wrong worker, by the worker that got them", ["worker"], () => w().map(([l, c]) => [l, c.wrongWorker]));
  gauge(reg, "pias_flows_live", "Live flows", [], () => one(c().flowsLive));
  const targets = () => src.targets();
  mirrored(reg, "pias_target_packets_total", "Packets forwarded to a target", ["group", "target"], () => targets().map((t) => [{ group: t.group, target: t.endpoint }, t.packets]));
  gauge(reg, "pias_target_active_flows", "Live flows pinned to a target", ["group", "target"], () => targets().map((t) => [{ group: t.group, target: t.endpoint }, t.activeFlows]));
  gauge(reg, "pias_target_up", "1 while the target takes new flows, 0 while it is down", ["group", "target"], () => targets().map((t) => [{ group: t.group, target: t.endpoint }, t.up ? 1 : 0]));
  mirrored(reg, "pias_health_checks_total", "Health checks run, by result", ["group", "target", "result"], () =>
    src.health().flatMap((h) => [
      [{ group: h.group, target: h.target, result: "ok" }, h.checks - h.failures],
      [{ group: h.group, target: h.target, result: "failed" }, h.failures],
    ] as [Record<string, string>, number][]));
  mirrored(reg, "pias_io_packets_total", "Packets through the I/O backend, by event", ["event"], () => Object.entries(src.io()).map(([event, v]) => [{ event }, v]));
  gauge(reg, "pias_io_frames", "The I/O backend's buffers by state (AF_XDP: UMEM frames free, fill, rx, core, held, tx, completion)", ["state"], () => Object.entries(src.ioLevels?.() ?? {}).map(([state, v]) => [{ state }, v]));
  mirrored(reg, "pias_config_reloads_total", "Configuration reloads, by result", ["result"], () => {
    const r = src.reloads();
    return [[{ result: "ok" }, r.ok], [{ result: "rejected" }, r.rejected]];
  });
  const node = () => src.cluster()?.node.stats();
  mirrored(reg, "pias_control_messages_received_total", "Control messages accepted, by type", ["type"], () => Object.entries(node()?.received ?? {}).map(([type, v]) => [{ type }, v]));
  mirrored(reg, "pias_control_messages_sent_total", "Control messages sent, by type", ["type"], () => Object.entries(node()?.sent ?? {}).map(([type, v]) => [{ type }, v]));
  mirrored(reg, "pias_control_rejected_total", "Control messages rejected, by reason", ["reason"], () => Object.entries(node()?.rejected ?? {}).map(([reason, v]) => [{ reason }, v as number]));
  gauge(reg, "pias_cluster_live_proxies", "Live proxies in this proxy's view (itself included)", [], () => (node() ? one(node()!.live) : []));
  gauge(reg, "pias_jap_targets", "Targets joined through this proxy", [], () => (node() ? one(node()!.jap.targets) : []));
  gauge(reg, "pias_rap_entries", "JAP registrations this proxy holds as a RAP", [], () => (node() ? one(node()!.rap.entries) : []));
  gauge(reg, "pias_iap_cache_entries", "Groups in this proxy's IAP cache", [], () => (node() ? one(node()!.iap.cache) : []));
  overlayMetrics(reg, () => src.overlay?.() ?? null);
  mirrored(reg, "pias_cluster_packets_total", "Packets the host handled for the cluster, by event", ["event"], () => Object.entries(src.cluster()?.counters ?? {}).map(([event, v]) => [{ event }, v]));
  const sync = () => src.fleet?.()?.sync ?? null;
  const view = () => src.fleet?.()?.membership ?? null;
  gauge(reg, "pias_store_reachable", "1 while the store (etcd) answers this proxy, 0 while it does not", [], () => (sync() ? one(sync()!.reachable ? 1 : 0) : []));
  gauge(reg, "pias_store_view_stale", "1 while the membership view is older than a lease TTL (the store has not confirmed it)", [], () => (view() ? one(view()!.stale ? 1 : 0) : []));
  gauge(reg, "pias_store_view_age_seconds", "Seconds since the store last confirmed the membership view", [], () => (view() && Number.isFinite(view()!.ageMs()) ? one(view()!.ageMs() / 1000) : []));
  gauge(reg, "pias_store_revision", "Store revision of the view and fleet configuration this proxy acts on", [], () => (sync() ? one(sync()!.mirrorRevision) : []));
  mirrored(reg, "pias_store_events_total", "Store link events: leaseGrants, leaseLost, keepaliveFailures, readFailures, mismatches, watchRestarts, badProxyKeys, configChanges", ["event"], () =>
    Object.entries(sync()?.counters ?? {}).map(([event, v]) => [{ event }, v]));
  const bgp = () => src.bgp?.() ?? null;
  gauge(reg, "pias_bgp_session_up", "1 while the BGP session to the neighbour is established", ["neighbor"], () => (bgp()?.sessions ?? []).map((s) => [{ neighbor: s.neighbor }, s.up ? 1 : 0]));
  gauge(reg, "pias_bgp_prefix_announced", "1 while BIRD announces the prefix (also while GRACEFUL_SHUTDOWN), 0 while withdrawn", ["prefix"], () => (bgp()?.prefixes ?? []).map((p) => [{ prefix: p.prefix }, p.announced ? 1 : 0]));
  return reg;
}

/** An overlay node's packets by event, bindings, live nodes and its share of the partition. */
function overlayMetrics(reg: Registry, read: () => OverlayStatus | null): void {
  const events = (s: OverlayStatus): [Record<string, string>, number][] => [
    [{ event: "from-client" }, s.stats.fromClient], [{ event: "to-client" }, s.stats.toClient], [{ event: "via-remote" }, s.stats.viaRemote],
    [{ event: "direct" }, s.stats.direct], [{ event: "relayed-to-owner" }, s.stats.relayedToOwner], [{ event: "sent-out" }, s.stats.sentOut],
    [{ event: "replies-direct" }, s.stats.repliesDirect], [{ event: "replies-via-node" }, s.stats.repliesViaNode],
    [{ event: "handed-over" }, s.stats.handedOver],
  ];
  const one = (f: (s: OverlayStatus) => number) => (): [Record<string, string>, number][] => {
    const s = read();
    return s ? [[{}, f(s)]] : [];
  };
  mirrored(reg, "pias_overlay_packets_total", "Overlay packets by event (from-client, to-client, via-remote, direct, relayed-to-owner, sent-out, replies-direct, replies-via-node, handed-over)", ["event"], () => {
    const s = read();
    return s ? events(s) : [];
  });
  mirrored(reg, "pias_overlay_bindings_created_total", "Overlay NAT bindings created", [], one((s) => s.stats.flowsCreated));
  gauge(reg, "pias_overlay_bindings_live", "Overlay NAT bindings live", [], one((s) => s.stats.flowsLive));
  gauge(reg, "pias_overlay_nodes_live", "Live overlay nodes in this node's view (itself included)", [], one((s) => s.nodes));
  gauge(reg, "pias_overlay_blocks_owned", "Blocks of the overlay's TA space this node owns", [], one((s) => s.blocksOwned));
  mirrored(reg, "pias_overlay_blocks_moved_total", "Blocks of the TA space that changed owner in this node's view", [], one((s) => s.blocksMoved));
}

/** Serve the registry at http://host:port/metrics (and a liveness answer at /healthz); `refresh` runs before each scrape. */
export function serveMetrics(reg: Registry, listen: string, refresh: () => Promise<void> = async () => {}): Promise<Server> {
  const m = /^\[?(.*?)\]?:(\d+)$/.exec(listen)!;
  const server = createServer((req, res) => {
    if (req.url === "/metrics") {
      refresh().then(() => reg.metrics()).then(
        (text) => res.writeHead(200, { "content-type": reg.contentType }).end(text),
        (err: Error) => res.writeHead(500).end(`${err.message}\n`),
      );
    } else if (req.url === "/healthz") {
      res.writeHead(200, { "content-type": "text/plain" }).end("ok\n");
    } else {
      res.writeHead(404).end("not found: try /metrics\n");
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(Number(m[2]), m[1], () => {
      server.off("error", reject);
      resolve(server);
    });
  });
}
