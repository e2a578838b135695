// This proxy's part in the PIAS system (DESIGN.md §1-4), between the control
// plane (src/control: membership, JAP, RAP, IAP over HMAC-signed UDP) and
// the data plane:
//
// - control messages reach the core as UDP to the control port of an anycast
//   or proxy address; it hands them to the host (HostWork.Control) and they
//   go to the ControlNode. Its answers leave as UDP from this proxy's address,
//   written to the I/O backend like any packet.
// - JAP: a target that joins becomes a target of the local group (created on
//   the first, removed with the last); it leaves, expires or changes, and the
//   data plane follows. Target changes are queued and applied once per tick
//   (at most MAX_TARGET_CHANGES of them), one table update per group for all
//   of a tick's changes, never on the packet path; a join is acknowledged
//   only once the data plane installed its target, and one the data plane
//   refused is refused to the joiner with the reason.
// - IAP: a packet to a TA in the anycast prefixes with no local group comes
//   to the host (HostWork.Unresolved); the IAP asks the group's RAP, the packet
//   waits in its bounded queue, and with the answer the group is installed
//   with its JAPs as PIAS-aware targets (IP-in-IP to the JAP) and the queued
//   packets go through the core. Answers are re-read every second (RAP pushes
//   update the cache) and the installed JAPs follow. Packets to TAs no JAP
//   serves cost no memory per TA (the IAP's negative cache) and one log line
//   per interval (with the count), whatever their rate; the core hands the
//   host at most unresolvedPerSecond of them. When such a flood ends, V8 is
//   asked for one full collection, so the memory its garbage made V8 grow
//   goes back to the system instead of staying resident.
// - Membership: the live proxies are the data plane's peers (IP-in-IP is
//   accepted only from them). Heartbeats to the seeds, or a view the owner
//   keeps from a store (cluster.store: src/daemon/fleet.ts).
// - Keys and joinable groups follow a reload (update()); the rest of the
//   cluster section needs a restart.

import { randomBytes } from "node:crypto";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Logger } from "pino";
import { Verdict, HostWork, Link, Vnet } from "../../assembly/shared/abi.js";
import type { ClusterConfig, ClusterGroupConfig, ProxyConfig } from "../config/types.js";
import { ControlNode, taKey, type ControlNodeOptions, type Endpoint, type JapEntry, type KeySet, type ProxyMembership, type ProxyRef, type RejectCode, type TargetEvent, type TransportAddress } from "../control/index.js";
import type { DataPlaneError } from "../errors.js";
import type { DataPlane, GroupSpec, TargetSpec } from "../core/dataplane.js";
import type { PacketBatch } from "../core/batch.js";
import type { PacketRing } from "../core/ring.js";
import type { PacketIO } from "../io/backend.js";
import { endpointKey, formatAddress, parseAddress } from "../net/addr.js";
import { buildUdp, destination, parseUdp } from "../net/packet.js";
import { LogLimiter } from "./log-limit.js";

const TICK_MS = 100;
/** Target changes (joins, leaves, expiries) applied to the data plane per tick at most; the rest wait for the next. */
const MAX_TARGET_CHANGES = 512;
/** Packets to unresolved TAs per second from which a second counts as a flood, and the quiet after it before memory is given back. */
const FLOOD_PER_SECOND = 500;
const FLOOD_QUIET_MS = 10_000;
const SYNC_MS = 1000;
const DEFAULT_DISTANCE = 100;
const ETHERNET = 1;

export interface ClusterCounters {
  controlIn: number;
  controlOut: number;
  /** Control packets that were not a UDP datagram the host could read. */
  controlMalformed: number;
  /** Packets to an unresolved group, handed to the IAP. */
  unresolved: number;
  /** Packets of a group whose lookup failed, that no JAP serves, or past the IAP's queue. */
  unresolvedDropped: number;
  /** Queued packets that went through the core once the answer came. */
  reinjected: number;
  /** Joined targets the data plane refused (the join was refused too). */
  installRefused: number;
}

export class Cluster {
  readonly node: ControlNode;
  readonly counters: ClusterCounters = { controlIn: 0, controlOut: 0, controlMalformed: 0, unresolved: 0, unresolvedDropped: 0, reinjected: 0, installRefused: 0 };
  private readonly self: Endpoint;
  private groups: Map<string, ClusterGroupConfig>;
  /** Groups this proxy serves with its own targets (JAP): key -> TA and targets by endpoint. */
  private readonly local = new Map<string, { ta: TransportAddress; targets: Map<string, TargetSpec> }>();
  /** Groups installed from the IAP's answers: key -> TA and the JAPs installed, by endpoint. */
  private readonly remote = new Map<string, { ta: TransportAddress; japs: Map<string, TargetSpec> }>();
  private readonly batch: PacketBatch;
  /** Target events of the JAP, applied to the data plane by the tick. */
  private changes: TargetEvent[] = [];
  private readonly logs: LogLimiter;
  private timer: NodeJS.Timeout | null = null;
  private lastSync = 0;
  /** Unresolved packets (handed over or throttled) at the last sync, and the last flood second (0: none since the last collection). */
  private lastUnresolved = 0;
  private floodAt = 0;
  /** The worker each queued packet came from (workers > 1). */
  private readonly origins = new WeakMap<Uint8Array, number>();
  /** With workers: run re-injected packets through worker w's core instead of this one's. */
  forwardVia: ((frames: Uint8Array[], worker: number) => void) | null = null;

  constructor(
    private cfg: ClusterConfig,
    proxy: ProxyConfig,
    private readonly dp: DataPlane,
    private readonly io: PacketIO,
    private readonly log: Logger,
    /** Where the live proxies come from; default: heartbeats to the seeds. */
    membership?: (self: ProxyRef) => ProxyMembership,
    /** More control-node options (the overlay role, src/daemon/overlay.ts). */
    extra: Partial<ControlNodeOptions> = {},
  ) {
    const address = parseAddress((proxy.address ?? proxy.address6)!).bytes;
    this.self = { address, port: cfg.controlPort };
    this.groups = new Map(cfg.groups.map((g) => [g.key, g]));
    this.batch = dp.createBatch(64, 64 * (io.capacity + 256));
    this.logs = new LogLimiter((fields, msg) => this.log.warn(fields, msg));
    dp.setControlPort(cfg.controlPort);
    dp.setResolveBudget(cfg.unresolvedPerSecond);
    dp.setPeers(cfg.seeds);
    this.node = new ControlNode({
      id: cfg.id,
      endpoint: this.self,
      clusterKey: keySet(cfg.key, cfg.acceptKey),
      groupKey: (ta) => {
        const g = this.groups.get(taKey(ta));
        return g && keySet(g.joinKey, g.acceptJoinKey);
      },
      membership: membership?.({ id: cfg.id, endpoint: this.self }),
      seeds: cfg.seeds.map((s) => ({ address: parseAddress(s).bytes, port: cfg.controlPort })),
      now: () => Date.now(),
      send: (to, bytes) => this.send(to, bytes),
      nonce: () => randomBytes(12),
      replicas: cfg.replicas,
      joinsPerSecond: cfg.joinsPerSecond,
      lookupsPerSecond: cfg.lookupsPerSecond,
      negativeTtlS: cfg.negativeTtl,
      deferInstall: true,
      // the load figure a JAP refreshes its registrations with: its targets in the group
      load: (_ta, targets) => targets,
      onTarget: (ev) => this.changes.push(ev),
      onRelease: (r) => {
        if (r.failed || r.japs.length === 0) {
          this.counters.unresolvedDropped += r.packets.length;
          this.logs.event(r.failed ? "lookup-failed" : "no-jap", { group: taKey(r.ta), dropped: r.packets.length }, r.failed ? "group lookup failed" : "no JAP for group");
          return;
        }
        this.installRemote(r.ta, r.japs);
        this.reinject(r.packets);
      },
      onMembership: (ev) => {
        this.log.info({ proxy: ev.proxy.id, kind: ev.kind, revision: ev.revision }, "proxy membership");
        this.updatePeers();
      },
      ...extra,
    });
  }

  start(): void {
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
    this.log.info({ id: this.cfg.id, controlPort: this.cfg.controlPort, seeds: this.cfg.seeds, groups: [...this.groups.keys()] }, "cluster node started");
  }

  /** Leave: unregister at the RAPs; stop the timer. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.node.stop();
  }

  private tick(): void {
    this.node.tick();
    this.applyTargetChanges();
    this.logs.flush();
    const now = Date.now();
    if (now - this.lastSync >= SYNC_MS) {
      this.lastSync = now;
      this.syncRemote();
      this.afterFloods(now);
    }
  }

  /** The pump's host handler: control messages and packets to unresolved groups. */
  readonly handle = (ring: PacketRing, slot: number): void => this.handleFrame(ring.packet(slot), ring.reason(slot));

  /**
   * A frame the core handed to the host (`work`: HostWork), from the worker
   * `origin` when workers forward: the packets an unresolved group queued go
   * back through that worker's core, which then owns their flow.
   */
  handleFrame(frame: Uint8Array, work: number, origin = 0): void {
    const ip = frame.subarray(linkHeaderLen(this.io.linkType));
    if (work === HostWork.Control) {
      const d = parseUdp(ip);
      if (!d) {
        this.counters.controlMalformed++;
        return;
      }
      this.counters.controlIn++;
      this.node.receive({ address: d.src, port: d.sport }, d.payload);
      return;
    }
    const dst = destination(ip);
    if (!dst) {
      this.counters.unresolvedDropped++;
      return;
    }
    this.counters.unresolved++;
    const ta: TransportAddress = { protocol: dst.protocol, address: Uint8Array.from(dst.dst), port: dst.dport };
    // copied only when it waits or goes on (the ring slot is reused), not for every packet of a flood
    let copy: Uint8Array | undefined;
    const copyOf = (): Uint8Array => {
      copy = frame.slice();
      if (origin !== 0) this.origins.set(copy, origin);
      return copy;
    };
    const r = this.node.resolve(ta, copyOf);
    if (r.status === "pending") {
      if (!r.queued) this.counters.unresolvedDropped++;
      return;
    }
    if (r.japs.length === 0 || this.local.has(taKey(ta))) {
      this.counters.unresolvedDropped++;
      return;
    }
    // copied before the install: growing the core's memory would detach `frame`
    const packet = copy ?? copyOf();
    this.installRemote(ta, r.japs);
    this.reinject([packet]);
  }

  private send(to: Endpoint, bytes: Uint8Array): void {
    const packet = buildUdp(this.self.address, this.self.port, to.address, to.port, bytes);
    this.counters.controlOut++;
    this.io.sendOne(frame(this.io.linkType, packet));
  }

  /** A reload's cluster section: the cluster key(s) and the joinable groups (keys, policies) change now; the rest needs a restart. */
  update(cfg: ClusterConfig): void {
    this.cfg = { ...this.cfg, key: cfg.key, acceptKey: cfg.acceptKey, groups: cfg.groups };
    this.groups = new Map(cfg.groups.map((g) => [g.key, g]));
    this.node.auth.setClusterKey(keySet(cfg.key, cfg.acceptKey));
  }

  private updatePeers(): void {
    const peers = new Set(this.cfg.seeds);
    for (const p of this.node.membership.tunnelPeers()) if (p.id !== this.cfg.id) peers.add(formatAddress(p.endpoint.address));
    this.dp.setPeers([...peers]);
  }

  private spec(ta: TransportAddress, targets: TargetSpec[]): GroupSpec {
    const g = this.groups.get(taKey(ta));
    return { protocol: ta.protocol, address: formatAddress(ta.address), port: ta.port, policy: g?.policy ?? "proximity", affinity: g?.affinity ?? "client", targets };
  }

  /** The groups the cluster installed (local targets, remote JAPs): a reload keeps them. */
  groupSpecs(): GroupSpec[] {
    return [
      ...[...this.local.values()].map((g) => this.spec(g.ta, [...g.targets.values()])),
      ...[...this.remote.values()].map((g) => this.spec(g.ta, [...g.japs.values()])),
    ];
  }

  // ---- JAP: local targets ----

  private targetSpec(ev: TargetEvent): TargetSpec {
    const t = ev.target;
    return { address: formatAddress(t.endpoint.address), port: t.endpoint.port, weight: t.weight, aware: t.aware, label: t.label };
  }

  /**
   * Apply queued target events to the data plane: per group, the removals
   * and installs of the batch with one table update, then tell the JAP which
   * joins were installed (it acknowledges them) and which were refused, why.
   */
  private applyTargetChanges(): void {
    if (this.changes.length === 0) return;
    const batch = this.changes.length <= MAX_TARGET_CHANGES ? this.changes : this.changes.slice(0, MAX_TARGET_CHANGES);
    this.changes = batch === this.changes ? [] : this.changes.slice(MAX_TARGET_CHANGES);
    // per group, in event order: what to take out, what to put in (and which put-ins are joins to confirm)
    const work = new Map<string, { ta: TransportAddress; remove: Set<string>; add: Map<string, { spec: TargetSpec; ev: TargetEvent }> }>();
    for (const ev of batch) {
      let w = work.get(ev.group);
      if (!w) work.set(ev.group, (w = { ta: ev.ta, remove: new Set(), add: new Map() }));
      const id = endpointKey(ev.target.endpoint.address, ev.target.endpoint.port);
      const installed = this.local.get(ev.group)?.targets.has(id) ?? false;
      if (ev.kind === "remove") {
        w.add.delete(id);
        if (installed) w.remove.add(id);
      } else {
        if (installed) w.remove.add(id); // an update replaces the target (its flows end)
        const prev = w.add.get(id);
        w.add.set(id, { spec: this.targetSpec(ev), ev: prev?.ev.kind === "add" ? prev.ev : ev });
      }
    }
    for (const [key, w] of work) this.applyGroupChanges(key, w.ta, w.remove, w.add);
  }

  private applyGroupChanges(key: string, ta: TransportAddress, remove: Set<string>, add: Map<string, { spec: TargetSpec; ev: TargetEvent }>): void {
    const confirm = (ev: TargetEvent, reason: RejectCode): void => {
      if (ev.kind === "add") this.node.confirmTarget(ev.ta, ev.target.endpoint, reason);
    };
    let group = this.local.get(key);
    try {
      if (!group) {
        if (add.size === 0) return;
        if (this.remote.has(key)) {
          this.dp.removeGroup(key);
          this.remote.delete(key);
        }
        this.dp.addGroup(this.spec(ta, []));
        group = { ta, targets: new Map() };
        this.local.set(key, group);
      }
      const adds = [...add.values()];
      const refused = this.dp.updateTargets(key, [...remove], adds.map((a) => a.spec));
      for (const id of remove) group.targets.delete(id);
      adds.forEach((a, i) => {
        const err = refused[i];
        const id = endpointKey(a.ev.target.endpoint.address, a.ev.target.endpoint.port);
        if (err) {
          this.counters.installRefused++;
          this.logs.event("install-refused", { group: key, target: id, err: err.message }, "target refused by the data plane; join refused");
        } else group!.targets.set(id, a.spec);
        confirm(a.ev, err ? refusal(err) : "none");
      });
      if (remove.size || add.size) this.log.info({ group: key, added: adds.length - refused.filter(Boolean).length, removed: remove.size, targets: group.targets.size }, "targets changed");
      if (group.targets.size === 0) {
        this.dp.removeGroup(key); // the IAP path serves it again
        this.local.delete(key);
      }
    } catch (err) {
      this.log.error({ group: key, err: (err as Error).message }, "cannot apply target changes");
      for (const a of add.values()) confirm(a.ev, "install-failed");
    }
  }

  // ---- IAP: groups served by other proxies ----

  private japSpec(j: JapEntry): TargetSpec {
    return { address: formatAddress(j.proxy.endpoint.address), port: 0, aware: true, distance: this.cfg.distances[j.proxy.id] ?? DEFAULT_DISTANCE };
  }

  private installRemote(ta: TransportAddress, japs: readonly JapEntry[]): void {
    const key = taKey(ta);
    if (this.local.has(key)) return; // IAP = JAP: serve it with the local targets
    const want = new Map(japs.filter((j) => j.proxy.id !== this.cfg.id).map((j) => [endpointKey(j.proxy.endpoint.address, 0), this.japSpec(j)]));
    let entry = this.remote.get(key);
    try {
      if (!entry) {
        this.dp.addGroup(this.spec(ta, [...want.values()]));
        entry = { ta, japs: want };
        this.remote.set(key, entry);
        this.log.info({ group: key, japs: japs.map((j) => j.proxy.id) }, "group resolved");
        return;
      }
      for (const id of [...entry.japs.keys()]) {
        if (!want.has(id)) {
          this.dp.removeTarget(key, id);
          entry.japs.delete(id);
        }
      }
      for (const [id, spec] of want) {
        if (!entry.japs.has(id)) {
          this.dp.addTarget(key, spec);
          entry.japs.set(id, spec);
        }
      }
    } catch (err) {
      this.log.error({ group: key, err: (err as Error).message }, "cannot install group");
    }
  }

  /** Re-read the IAP's answers for the installed groups: JAPs come and go (RAP pushes, TTLs). */
  private syncRemote(): void {
    for (const [key, entry] of [...this.remote]) {
      const r = this.node.resolve(entry.ta);
      if (r.status !== "cached") continue; // asking again: keep what is installed meanwhile
      if (r.japs.length === 0) {
        this.dp.removeGroup(key);
        this.remote.delete(key);
        this.log.info({ group: key }, "group has no JAP any more");
        continue;
      }
      this.installRemote(entry.ta, r.japs);
    }
  }

  /** Once a flood of unresolved packets has been over for FLOOD_QUIET_MS: one full garbage collection. */
  private afterFloods(now: number): void {
    const n = this.counters.unresolved + (this.dp.counters().drops["resolve-throttled"] ?? 0);
    if (n - this.lastUnresolved >= FLOOD_PER_SECOND) this.floodAt = now;
    this.lastUnresolved = n;
    if (this.floodAt !== 0 && now - this.floodAt >= FLOOD_QUIET_MS) {
      this.floodAt = 0;
      collectGarbage();
      this.log.info({}, "flood over: memory given back");
    }
  }

  /** Run queued packets through the core now that their group is installed, and send what it forwards. */
  private reinject(packets: readonly Uint8Array[]): void {
    if (this.forwardVia) {
      const byWorker = new Map<number, Uint8Array[]>();
      for (const p of packets) {
        const w = this.origins.get(p) ?? 0;
        byWorker.set(w, [...(byWorker.get(w) ?? []), p]);
      }
      for (const [w, frames] of byWorker) this.forwardVia(frames, w);
      this.counters.reinjected += packets.length;
      return;
    }
    const link = this.io.linkType;
    for (let i = 0; i < packets.length; i += this.batch.slots) {
      this.batch.clear();
      for (const p of packets.slice(i, i + this.batch.slots)) this.batch.add(p, { link });
      this.dp.process(this.batch);
      for (let j = 0; j < this.batch.count; j++) {
        if (this.batch.verdict(j) === Verdict.Forward && this.io.sendOne(this.batch.packet(j))) this.counters.reinjected++;
        else if (this.batch.verdict(j) !== Verdict.Drop || this.batch.reason(j) !== 0) this.counters.unresolvedDropped++;
      }
      // a super-packet cut for an aware target, and what followed it (rewrite/gso.ts)
      for (const s of this.dp.emittedSegments()) if (this.io.sendOne(s)) this.counters.reinjected++;
    }
  }
}

/** A key and the second one accepted during a rotation. */
function keySet(key: Uint8Array, accept: Uint8Array | null): KeySet {
  return accept ? [key, accept] : key;
}

const linkHeaderLen = (link: number): number => (link === ETHERNET ? 14 : link === Link.VNET ? Vnet.SIZE : 0);

/**
 * An IP packet in a frame of the backend's link type: behind an Ethernet
 * header (addresses are set by the pcap backend) or a virtio_net_hdr that
 * asks for nothing.
 */
function frame(link: number, ip: Uint8Array): Uint8Array {
  const n = linkHeaderLen(link);
  const f = new Uint8Array(n + ip.length);
  if (link === ETHERNET) {
    f[12] = ip[0] >> 4 === 6 ? 0x86 : 0x08;
    f[13] = ip[0] >> 4 === 6 ? 0xdd : 0x00;
  }
  f.set(ip, n);
  return f;
}

/** The reason a joiner is told when the data plane refused its target. */
function refusal(err: DataPlaneError): RejectCode {
  return err.failure === "full" ? "dataplane-full" : "install-failed";
}

let gc: (() => void) | null | undefined;

/** A full V8 collection (the gc function a context gets once --expose-gc is set), or nothing where that is refused. */
function collectGarbage(): void {
  if (gc === undefined) {
    try {
      setFlagsFromString("--expose-gc");
      gc = runInNewContext("gc") as () => void;
    } catch {
      gc = null;
    }
  }
  gc?.();
}
