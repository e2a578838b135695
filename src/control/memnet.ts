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
import { epId, type Endpoint } from "./ta.js";

export type Handler = (from: Endpoint, bytes: Uint8Array, to?: Endpoint) => void;

export interface MemoryNetworkOptions {
  /** ms from send to delivery: a constant or per pair. Default 5. */
  readonly latencyMs?: number | ((from: Endpoint, to: Endpoint) => number);
  /** Clock at the start, ms. Default 1_700_000_000_000. */
  readonly start?: number;
  /** Receives frames to endpoints nobody attached (default: they are counted unreachable and lost). */
  readonly sink?: Handler;
}

interface InFlight {
  readonly from: Endpoint;
  readonly to: string;
  readonly dest: Endpoint;
  readonly bytes: Uint8Array;
}

export class MemoryNetwork {
  private clock: number;
  private readonly handlers = new Map<string, Handler>();
  private readonly anycasts = new Map<string, (from: Endpoint) => Endpoint | undefined>();
  /** Frames by delivery time, in send order (FIFO between the same two endpoints, as on a quiet path). */
  private readonly buckets = new Map<number, InFlight[]>();
  private readonly times = new DeadlineHeap<number>();
  private pending = 0;
  private readonly latency: (from: Endpoint, to: Endpoint) => number;
  private readonly sink: Handler | undefined;
  /** Return true to lose a frame. */
  drop: ((from: Endpoint, to: Endpoint, bytes: Uint8Array) => boolean) | undefined;
  readonly counters = { sent: 0, delivered: 0, lost: 0, unreachable: 0, bytes: 0 };
  /** Frames sent, by message kind ("join", "heartbeat", ... or "other"). */
  readonly byKind: Record<string, number> = {};

  constructor(opts: MemoryNetworkOptions = {}) {
    this.clock = opts.start ?? 1_700_000_000_000;
    const l = opts.latencyMs ?? 5;
    this.latency = typeof l === "number" ? () => l : l;
    this.sink = opts.sink;
  }

  /** The simulated clock, ms (bound: pass it as a node's `now`). */
  readonly now = (): number => this.clock;

  attach(endpoint: Endpoint, handler: Handler): void {
    this.handlers.set(epId(endpoint), handler);
  }

  detach(endpoint: Endpoint): void {
    this.handlers.delete(epId(endpoint));
  }

  /** Frames to `endpoint` reach route(sender) instead (undefined: lost). */
  anycast(endpoint: Endpoint, route: (from: Endpoint) => Endpoint | undefined): void {
    this.anycasts.set(epId(endpoint), route);
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
    const route = this.anycasts.get(epId(to));
    const dest = route ? route(from) : to;
    if (dest === undefined || this.drop?.(from, dest, bytes)) {
      this.counters.lost++;
      return;
    }
    const at = this.clock + this.latency(from, dest);
    let bucket = this.buckets.get(at);
    if (bucket === undefined) {
      this.buckets.set(at, (bucket = []));
      this.times.push(at, at);
    }
    bucket.push({ from, to: epId(dest), dest, bytes });
    this.pending++;
  }

  /** Frames in flight. */
  get inFlight(): number {
    return this.pending;
  }

  /** Deliver every frame due up to `until` (in time order) and set the clock to `until`. */
  run(until: number): void {
    while (this.times.peek() <= until) {
      const at = this.times.pop() as number;
      const bucket = this.buckets.get(at) as InFlight[];
      this.buckets.delete(at);
      if (at > this.clock) this.clock = at;
      for (const f of bucket) {
        this.pending--;
        const h = this.handlers.get(f.to);
        if (h === undefined) {
          this.counters.unreachable++;
          this.sink?.(f.from, f.bytes, f.dest);
          continue;
        }
        this.counters.delivered++;
        h(f.from, f.bytes);
      }
    }
    if (until > this.clock) this.clock = until;
  }
}
