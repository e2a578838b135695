// Set-up of the data plane's tables. Called once, before any packet.

import { flowsInit } from "./flow/flows";
import { groupsInit } from "./group/groups";
import { fragmentsInit } from "./flow/fragments";
import { portsInit } from "./flow/ports";

let ready = false;

/**
 * Exported: size the tables (fragment entries: 0 = one per 16 flows, at
 * least 1024). Returns 0, or -1 when memory cannot be reserved (or already
 * initialised).
 */
export function dataplane_init(maxFlows: u32, maxGroups: u32, maxTargets: u32, maxFragments: u32): i32 {
  if (ready) return -1;
  let fragments = maxFragments;
  if (fragments == 0) fragments = maxFlows >> 4 < 1024 ? 1024 : maxFlows >> 4;
  if (!flowsInit(maxFlows) || !groupsInit(maxGroups, maxTargets) || !fragmentsInit(fragments) || !portsInit(maxFlows, maxTargets)) return -1;
  ready = true;
  return 0;
}
