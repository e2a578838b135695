// A cluster of ControlNodes and Joiners on an in-memory network with
// simulated time, for scenario tests. Anycast: each target has a home proxy
// (its nearest); frames to the anycast control endpoint reach the home if it
// is alive, else the next live proxy in index order.
import { ControlNode, type ControlNodeOptions } from "../../src/control/node.js";
import { Joiner, type JoinerEvent } from "../../src/control/joiner.js";
import { MemoryNetwork } from "../../src/control/memnet.js";
import type { Release } from "../../src/control/iap.js";
import type { TargetEvent } from "../../src/control/jap.js";
import { epKey, sameTa, type Endpoint, type TransportAddress } from "../../src/control/ta.js";
import { CLUSTER, ep, ip4, targetAt } from "./arbitraries.js";
import type { TargetInfo } from "../../src/control/message.js";

export const ANYCAST: Endpoint = ep(ip4(198, 51, 100, 1), 7400);

export interface ClusterOptions {
  readonly groups: { ta: TransportAddress; key: Uint8Array }[];
  readonly node?: Partial<ControlNodeOptions>;
}

export function cluster(n: number, opts: ClusterOptions) {
  const net = new MemoryNetwork({ latencyMs: 5 });
  const endpoints = Array.from({ length: n }, (_, i) => ep(ip4(192, 0, 2, i + 1), 7400));
  const alive = new Array(n).fill(true);
  const home = new Map<string, number>();
  const groupKey = (ta: TransportAddress) => opts.groups.find((g) => sameTa(g.ta, ta))?.key;
  const released: { node: number; release: Release }[] = [];
  const targetEvents: { node: number; ev: TargetEvent }[] = [];
  const make = (i: number, incarnation: number): ControlNode =>
    new ControlNode({
      id: `ap-${i}`,
      endpoint: endpoints[i],
      clusterKey: CLUSTER,
      groupKey,
      seeds: endpoints,
      now: net.now,
      send: net.sender(endpoints[i]),
      incarnation,
      onRelease: (release) => released.push({ node: i, release }),
      onTarget: (ev) => targetEvents.push({ node: i, ev }),
      random: () => 0.5,
      ...opts.node,
    });
  const nodes = endpoints.map((_, i) => make(i, 1));
  nodes.forEach((_, i) => net.attach(endpoints[i], (from, bytes) => nodes[i].receive(from, bytes)));
  const route = (from: Endpoint): Endpoint | undefined => {
    const h = home.get(epKey(from)) ?? 0;
    for (let k = 0; k < n; k++) {
      const i = (h + k) % n;
      if (alive[i]) return endpoints[i];
    }
    return undefined;
  };
  net.anycast(ANYCAST, route);

  const joiners: Joiner[] = [];
  const joinerEvents: { joiner: number; ev: JoinerEvent }[] = [];
  let nextPort = 40000;

  const c = {
    net,
    nodes,
    endpoints,
    alive,
    released,
    targetEvents,
    joiners,
    joinerEvents,
    /** A joiner for target 10.0.0.LAST:8080 whose nearest proxy is node `at`. */
    addJoiner(ta: TransportAddress, key: Uint8Array, last: number, at: number, target: TargetInfo = targetAt(last)): Joiner {
      const control = ep(ip4(10, 0, 0, last), nextPort++);
      home.set(epKey(control), at);
      const idx = joiners.length;
      const j = new Joiner({
        ta,
        target,
        key,
        anycast: ANYCAST,
        now: net.now,
        send: net.sender(control),
        random: () => 0.5,
        onState: (ev) => joinerEvents.push({ joiner: idx, ev }),
      });
      net.attach(control, (from, bytes) => j.receive(from, bytes));
      joiners.push(j);
      return j;
    },
    /** Frames from `from` to the anycast endpoint reach node `at` (while it lives). */
    setHome(from: Endpoint, at: number): void {
      home.set(epKey(from), at);
    },
    /** Run the network and every live node's and joiner's timers for `ms`, in steps. */
    advance(ms: number, step = 100): void {
      const end = net.now() + ms;
      while (net.now() < end) {
        const t = Math.min(end, net.now() + step);
        net.run(t);
        nodes.forEach((node, i) => alive[i] && node.tick());
        for (const j of joiners) j.tick();
      }
      net.run(net.now());
    },
    /** Node i dies: stops ticking, and frames to it are lost. */
    kill(i: number): void {
      alive[i] = false;
      net.detach(endpoints[i]);
    },
    /** Node i restarts at once with nothing (a new process: the next incarnation), before anyone declares it dead. */
    restart(i: number): void {
      nodes[i] = make(i, 2);
      alive[i] = true;
    },
    /** Index of a node by id. */
    index(id: string): number {
      return Number(id.slice(3));
    },
  };
  return c;
}
