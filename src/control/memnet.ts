// An in-memory datagram network with simulated time, for tests and the
// simulation: endpoints attach a handler, send() queues a frame for delivery
// after a latency, run(until) delivers everything due in time order while
// advancing the clock. Anycast is modelled by a route function that picks,
// per sender, which attached endpoint an anycast destination reaches (its
// "nearest proxy"). Loss and partitions are a drop predicate.
//
// Not a protocol component: nothing in the control plane depends on it.

import { DeadlineHeap } from "./deadlines.js";
import { peekKind } from "./message.js";
import { epKey, type Endpoint } from "./ta.js";

export type Handler = (from: Endpoint, bytes: Uint8Array) => void;

export interface MemoryNetworkOptions {
  /** ms from send to delivery: a constant or per pair. Default 5. */
  readonly latencyMs?: number | ((from: Endpoint, to: Endpoint) => number);
  /** Clock at the start, ms. Default 1_700_000_000_000. */
  readonly start?: number;
}

interface InFlight {
  readonly from: Endpoint;
  readonly to: string;
  readonly bytes: Uint8Array;
}

export class MemoryNetwork {
  private clock: number;
  private readonly handlers = new Map<string, Handler>();
  private readonly anycasts = new Map<string, (from: Endpoint) => Endpoint | undefined>();
  private readonly queue = new DeadlineHeap<InFlight>();
  private readonly latency: (from: Endpoint, to: Endpoint) => number;
  /** Return true to lose a frame. */
  drop: ((from: Endpoint, to: Endpoint, bytes: Uint8Array) => boolean) | undefined;
  readonly counters = { sent: 0, delivered: 0, lost: 0, unreachable: 0, bytes: 0 };
  /** Frames sent, by message kind ("join", "heartbeat", ... or "other"). */
  readonly byKind: Record<string, number> = {};

  constructor(opts: MemoryNetworkOptions = {}) {
    this.clock = opts.start ?? 1_700_000_000_000;
    const l = opts.latencyMs ?? 5;
    this.latency = typeof l === "number" ? () => l : l;
  }

  /** The simulated clock, ms (bound: pass it as a node's `now`). */
  readonly now = (): number => this.clock;

  attach(endpoint: Endpoint, handler: Handler): void {
    this.handlers.set(epKey(endpoint), handler);
  }

  detach(endpoint: Endpoint): void {
    this.handlers.delete(epKey(endpoint));
  }

  /** Frames to `endpoint` reach route(sender) instead (undefined: lost). */
  anycast(endpoint: Endpoint, route: (from: Endpoint) => Endpoint | undefined): void {
    this.anycasts.set(epKey(endpoint), route);
  }

  /** A send function bound to a source endpoint. */
  sender(from: Endpoint): (to: Endpoint, bytes: Uint8Array) => void {
    return (to, bytes) => this.send(from, to, bytes);
  }

  send(from: Endpoint, to: Endpoint, bytes: Uint8Array): void {
    this.counters.sent++;
    this.counters.bytes += bytes.length;
    const kind = peekKind(bytes) ?? "other";
    this.byKind[kind] = (this.byKind[kind] ?? 0) + 1;
    const route = this.anycasts.get(epKey(to));
    const dest = route ? route(from) : to;
    if (dest === undefined || this.drop?.(from, dest, bytes)) {
      this.counters.lost++;
      return;
    }
    this.queue.push(this.clock + this.latency(from, dest), { from, to: epKey(dest), bytes });
  }

  /** Frames in flight. */
  get inFlight(): number {
    return this.queue.size;
  }

  /** Deliver every frame due up to `until` (in time order) and set the clock to `until`. */
  run(until: number): void {
    while (this.queue.peek() <= until) {
      const at = this.queue.peek();
      const f = this.queue.pop() as InFlight;
      if (at > this.clock) this.clock = at;
      const h = this.handlers.get(f.to);
      if (h === undefined) {
        this.counters.unreachable++;
        continue;
      }
      this.counters.delivered++;
      h(f.from, f.bytes);
    }
    if (until > this.clock) this.clock = until;
  }
}
