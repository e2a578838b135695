// pias — the public library API. Proxy daemons embed this: create a data
// plane from a configuration, feed it batches of packets, read verdicts and
// counters. Everything not exported here is internal.

export {
  DataPlane, groupKey, reasonName, REASON_NAMES,
  type DataPlaneSettings, type GroupSpec, type TargetSpec, type ScopeSpec, type ReloadSummary, type Counters, type TargetStats, type DataPlaneExports,
} from "./core/dataplane.js";
export { PacketBatch, LINKTYPE_RAW, type PacketMeta } from "./core/batch.js";
export { loadConfig, parseConfigText } from "./config/load.js";
export {
  validateConfig, type PiasConfig, type ProxyConfig, type GroupConfig, type TargetConfig, type Timeouts,
  type Capacity, type PolicyName, type Protocol,
} from "./config/schema.js";
export { PiasError, ConfigError, CaptureFileError, DataPlaneError } from "./errors.js";
export { Verdict, Reason, AuxFlag, HostWork, Layout, Desc, Policy } from "../assembly/shared/abi.js";
