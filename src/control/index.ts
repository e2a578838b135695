// The PIAS control plane as a transport-agnostic library: wire format,
// authentication, rate limiting, rendezvous hashing, and the membership, JAP,
// RAP and IAP roles composed by ControlNode; Joiner is the target side;
// StoreSync keeps membership and configuration from a replicated store behind
// the KeyValueStore interface. All of it runs on an injected clock and an
// injected send(to, bytes): no sockets, no timers.
export * from "./ta.js";
export * from "./message.js";
export * from "./auth.js";
export * from "./ratelimit.js";
export * from "./rendezvous.js";
export * from "./deadlines.js";
export * from "./membership.js";
export * from "./store.js";
export * from "./lease-membership.js";
export * from "./store-sync.js";
export * from "./jap.js";
export * from "./rap.js";
export * from "./iap.js";
export * from "./negative.js";
export * from "./discovery.js";
export * from "./partition.js";
export * from "./overlay.js";
export * from "./overlay-keys.js";
export * from "./node.js";
export * from "./joiner.js";
export * from "./memnet.js";
export * from "./memstore.js";
