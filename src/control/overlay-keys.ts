// The overlay's two frame keys (README "Reaching an overlay"), derived so
// that a client, which holds the overlay key, can seal client frames but can
// never speak for a node: node frames are keyed from the cluster key, which
// only proxies hold. HMAC-SHA-256 with a fixed label, cut to SipHash's 16
// bytes.

import { hmacSha256 } from "./auth.js";

const utf8 = new TextEncoder();

/** The key of client <-> node frames, from the overlay key. */
export function overlayClientKey(overlayKey: Uint8Array): Uint8Array {
  return hmacSha256(overlayKey, utf8.encode("pias overlay client frames")).slice(0, 16);
}

/** The key of node <-> node frames, from the cluster key. */
export function overlayNodeKey(clusterKey: Uint8Array): Uint8Array {
  return hmacSha256(clusterKey, utf8.encode("pias overlay node frames")).slice(0, 16);
}
