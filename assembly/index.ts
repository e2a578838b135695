// Entry point of the Wasm data plane: everything exported here is the ABI the
// host (src/core/) uses. See assembly/shared/abi.ts for layouts and codes.
export { alloc_buffer, memory_bytes } from "./memory";
export { dataplane_init } from "./dataplane";
export {
  scratch_ptr, set_proxy_address, set_nat_ports, set_nat_ports_shared, set_verify_checksums, set_tunnel_mtu, set_timeouts,
  set_half_open_per_source,
} from "./settings";
export { counters_ptr, counters_reset } from "./counters";
export { abi_values } from "./host/abi-check";
export {
  group_add, group_remove, group_set_policy, group_set_scopes, group_set_pending, target_add, target_remove, target_set_up, target_set_weight,
  target_packets, target_active, group_count, target_count, group_targets,
} from "./group/groups";
export { group_commit, group_table_digest } from "./group/tables";
export { set_random_seed } from "./group/select";
export { flows_live, flows_capacity, flow_bytes_per_flow, flows_expire_all } from "./flow/flows";
export { process_batch } from "./pipeline";
export { gso_area, gso_emitted } from "./rewrite/gso";
export { reflect_batch } from "./host/reflect";
export { inspect_batch } from "./host/inspect";
export { ring_reset } from "./host/ring";
export {
  cap_reset, cap_scan, cap_consumed, cap_error, cap_error_offset, cap_format, cap_interfaces, cap_linktype,
  cap_strict_links, cap_error_link,
} from "./capture/scan";
export { cap_emit_begin, cap_emit } from "./capture/emit";
export {
  peers_clear, peer_add, prefixes_clear, prefix_add, set_control_port, set_unresolved_to_host, set_unresolved_per_second,
} from "./peers";
export {
  overlay_init, overlay_configure, overlay_flows_live, overlay_expire_all,
} from "./overlay/overlay";
export {
  overlay_prefixes_clear, overlay_prefix_add, overlay_set_space, overlay_owners_ptr, overlay_runners_ptr, overlay_nodes_clear, overlay_node_set,
  overlay_set_self, overlay_commit,
} from "./overlay/partition";
export { overlay_stats_ptr } from "./overlay/stats";
