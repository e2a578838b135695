// pias — the public library API. Proxy daemons embed this: create a data
// plane from a configuration, feed it batches of packets, read verdicts and
// counters. Everything not exported here is internal.

export {
  DataPlane, groupKey, reasonName, REASON_NAMES,
  type DataPlaneSettings, type GroupSpec, type TargetSpec, type ScopeSpec, type ReloadSummary, type Counters, type TargetStats, type DataPlaneExports,
} from "./core/dataplane.js";
export { PacketBatch, LINKTYPE_RAW, type PacketMeta } from "./core/batch.js";
export { loadConfig, parseConfigText } from "./config/load.js";
export { validateConfig } from "./config/validate.js";
export {
  type PiasConfig, type ProxyConfig, type GroupConfig, type TargetConfig, type Timeouts,
  type Capacity, type PolicyName, type Protocol,
} from "./config/types.js";
export { PiasError, ConfigError, CaptureFileError, DataPlaneError } from "./errors.js";
export { Verdict, Reason, AuxFlag, HostWork, Layout, Desc, Policy } from "../assembly/shared/abi.js";
export { PacketRing } from "./core/ring.js";
export {
  type HealthConfig, type DaemonConfig, type ClusterConfig, type ClusterGroupConfig,
} from "./config/types.js";
// the daemon, for embedding: start one from a config file, or wire your own backend
export { Daemon, tunRoutes, type DaemonOptions } from "./daemon/daemon.js";
export { HealthChecker, probe, type HealthChange, type TargetHealth } from "./daemon/health.js";
export type { PacketIO } from "./io/backend.js";
// the control plane (transport-free: bring a clock and a send function)
export {
  ControlNode, Joiner, parseTransportAddress, formatTransportAddress, taKey,
  type ControlNodeOptions, type TransportAddress, type Endpoint, type TargetInfo, type TargetEvent,
  StoreMembership, StoreSync, type ProxyMembership, type KeyValueStore,
} from "./control/index.js";
// a fleet in etcd (cluster.store): the client, and the fleet document `pias config push` writes
export { EtcdStore, StoreError } from "./store/etcd.js";
export { validateFleet, mergeFleet, fleetFromEntries, type FleetDocument } from "./config/fleet.js";
export { type StoreConfig, type EtcdStoreConfig } from "./config/store.js";
// BGP: the `bgp` section and BIRD's control socket (pias run announces through BIRD 2)
export { type BgpConfig, type BgpNeighborConfig, type BgpPrefixConfig } from "./config/bgp.js";
export { BirdControl, BirdError, parseProtocols, type BirdReply, type BirdLine, type ProtocolRow } from "./bgp/bird-control.js";
export { DaemonBgp, type BgpStatus } from "./daemon/bgp.js";
// the overlay (paper §6.2): the data plane's overlay tables, the TA partition, frames, the client end
export { OverlayPlane, type OverlaySettings, type OverlayStats } from "./core/overlay.js";
export { Partition, type PartitionSpace } from "./control/partition.js";
export { overlayClientKey, overlayNodeKey } from "./control/overlay-keys.js";
export { sealFrame, openFrame } from "./net/overlay-frame.js";
export { OverlayClient, type OverlayClientOptions } from "./overlay/client.js";
export { OverlayKind, OverlayStat } from "../assembly/shared/abi.js";
export type { OverlayConfig } from "./config/overlay.js";
