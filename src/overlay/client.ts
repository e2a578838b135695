// The client end of an overlay (README "Reaching an overlay", paper §6.2):
// a TUN device the kernel routes the chosen destinations into, and a UDP
// socket to the local overlay node. Each packet read from the TUN goes to the
// node sealed in a client frame (src/net/overlay-frame.ts) with the key
// derived from the overlay key; each frame from the node that opens with that
// key and is a return frame goes back into the TUN for the kernel to deliver.
// Frames from anyone but the node, or that do not open, are counted and
// dropped.
//
// The machines here have no WireGuard or ipip module, so the tunnel lives in
// user space. One frame (one allocation, one send) per packet: a client's
// traffic, not a node's.

import { createSocket, type Socket } from "node:dgram";
import { spawnSync } from "node:child_process";
import { OverlayKind } from "../../assembly/shared/abi.js";
import { overlayClientKey } from "../control/overlay-keys.js";
import { epKey, type Endpoint } from "../control/ta.js";
import { PiasError } from "../errors.js";
import { ip } from "../io/tun-backend.js";
import { TunDevice } from "../io/tun.js";
import { formatAddress, parsePrefix, prefixContains } from "../net/addr.js";
import { openFrame, sealFrame, type FrameRejection } from "../net/overlay-frame.js";

export interface OverlayClientOptions {
  /** The overlay key (the client frames' key is derived from it). */
  readonly key: Uint8Array;
  /** The local node's frame endpoint. */
  readonly node: Endpoint;
  /** TUN interface name ("%d": the kernel numbers it). */
  readonly tunName: string;
  /** MTU of the TUN device: 1500 less the frame's 52 bytes, and some room. */
  readonly mtu: number;
  /** Prefixes routed into the overlay; "default" for everything but the node. */
  readonly routes: readonly string[];
  /** An address for the TUN device (CIDR), or none: the kernel sources from the host's own. */
  readonly address?: string;
  readonly now?: () => number;
}

export interface OverlayClientStats {
  /** Packets read from the TUN and sent to the node. */
  sent: number;
  /** Return frames opened and written to the TUN. */
  received: number;
  /** Frames dropped: not from the node, not opening (by reason), or not a return frame. */
  dropped: Record<FrameRejection | "not-from-node" | "wrong-kind" | "tun-write", number>;
  sendErrors: number;
}

const SLOTS = 64;
const SLOT = 65536;

export class OverlayClient {
  readonly stats: OverlayClientStats = { sent: 0, received: 0, dropped: { malformed: 0, "bad-tag": 0, stale: 0, "not-from-node": 0, "wrong-kind": 0, "tun-write": 0 }, sendErrors: 0 };
  private readonly clientKey: Uint8Array;
  private readonly mem = new Uint8Array(SLOT * (SLOTS + 1));
  private readonly view = new DataView(this.mem.buffer);
  private readonly nodeAddress: string;

  private constructor(
    private readonly opts: OverlayClientOptions,
    readonly tun: TunDevice,
    private readonly socket: Socket,
    private readonly pinned: string | null,
  ) {
    this.clientKey = overlayClientKey(opts.key);
    this.nodeAddress = formatAddress(opts.node.address);
  }

  /** Open the TUN device and its routes and the socket; start carrying packets. */
  static async open(opts: OverlayClientOptions): Promise<OverlayClient> {
    const tun = TunDevice.open({ name: opts.tunName });
    let socket: Socket | undefined;
    let pinned: string | null = null;
    try {
      ip(["link", "set", "dev", tun.name, "mtu", String(opts.mtu), "up"]);
      if (opts.address) ip(["addr", "add", opts.address, "dev", tun.name]);
      pinned = routeInto(tun.name, opts.routes, opts.node);
      socket = createSocket(opts.node.address.length === 4 ? "udp4" : "udp6");
      await new Promise<void>((resolve, reject) => {
        socket!.once("error", reject);
        socket!.bind(0, () => {
          socket!.off("error", reject);
          resolve();
        });
      });
    } catch (err) {
      tun.close();
      socket?.close();
      if (pinned) spawnSync("ip", ["-4", "route", "del", pinned]);
      throw err;
    }
    const c = new OverlayClient(opts, tun, socket, pinned);
    socket.on("message", (msg, rinfo) => c.fromNode(new Uint8Array(msg.buffer, msg.byteOffset, msg.length), rinfo.address));
    socket.on("error", () => c.stats.sendErrors++);
    tun.onReadable(() => c.fromTun());
    return c;
  }

  private now(): number {
    return Math.floor((this.opts.now ?? Date.now)() / 1000);
  }

  private fromTun(): void {
    const { mem, view } = this;
    for (;;) {
      for (let i = 0; i < SLOTS; i++) {
        view.setUint32(i * 32, SLOT * (i + 1), true);
        view.setUint32(i * 32 + 4, SLOT - 1, true);
      }
      const n = this.tun.readBatch(mem, 0, 32, SLOTS);
      const now = this.now();
      for (let i = 0; i < n; i++) {
        const off = view.getUint32(i * 32, true);
        const len = view.getUint32(i * 32 + 4, true);
        const frame = sealFrame(mem.subarray(off, off + len), OverlayKind.ClientData, this.clientKey, now);
        this.socket.send(frame, this.opts.node.port, this.nodeAddress, (err) => {
          if (err) this.stats.sendErrors++;
        });
        this.stats.sent++;
      }
      if (n < SLOTS) return;
    }
  }

  private fromNode(frame: Uint8Array, from: string): void {
    if (from.replace(/^::ffff:/, "") !== this.nodeAddress) {
      this.stats.dropped["not-from-node"]++;
      return;
    }
    const o = openFrame(frame, this.clientKey, this.now());
    if (!o.ok) {
      this.stats.dropped[o.reason]++;
      return;
    }
    if (o.kind !== OverlayKind.ClientReturn) {
      this.stats.dropped["wrong-kind"]++;
      return;
    }
    if (this.tun.write(o.inner)) this.stats.received++;
    else this.stats.dropped["tun-write"]++;
  }

  close(): void {
    this.tun.close(); // its routes go with it
    this.socket.close();
    if (this.pinned) spawnSync("ip", ["-4", "route", "del", this.pinned]);
  }
}

/**
 * Route `routes` into the TUN device. "default" takes everything (two /1
 * routes, which win over the default route without replacing it) except the
 * node itself, which keeps the route it has now (pinned as a /32, returned
 * so that close() removes it).
 */
function routeInto(dev: string, routes: readonly string[], node: Endpoint): string | null {
  let pinned: string | null = null;
  for (const r of routes) {
    if (r !== "default") {
      const p = parsePrefix(r);
      if (prefixContains(p, node.address)) throw new PiasError("EROUTE", `--route ${r} holds the overlay node ${epKey(node)}: its frames would loop`);
      ip([p.family === 4 ? "-4" : "-6", "route", "replace", r, "dev", dev]);
      continue;
    }
    const nodeAddr = formatAddress(node.address);
    const got = spawnSync("ip", ["-4", "route", "get", nodeAddr], { encoding: "utf8" });
    const via = /\bvia (\S+)/.exec(got.stdout)?.[1];
    const out = /\bdev (\S+)/.exec(got.stdout)?.[1];
    if (!out) throw new PiasError("EROUTE", `no route to the overlay node ${epKey(node)}: ${got.stderr.trim() || got.stdout.trim()}`);
    pinned = `${nodeAddr}/32`;
    ip(["-4", "route", "replace", pinned, ...(via ? ["via", via] : []), "dev", out]);
    ip(["-4", "route", "replace", "0.0.0.0/1", "dev", dev]);
    ip(["-4", "route", "replace", "128.0.0.0/1", "dev", dev]);
  }
  return pinned;
}
