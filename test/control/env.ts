// A fake clock and an outbox that records what a role sends, for role-level tests.
import type { Message, MessageKind, ProxyRef } from "../../src/control/message.js";
import { epKey, type Endpoint } from "../../src/control/ta.js";
import { Ring } from "../../src/control/rendezvous.js";
import { ep, ip4 } from "./arbitraries.js";

export const T0 = 1_700_000_000_000;

export interface Sent {
  readonly to: Endpoint;
  readonly msg: Message;
}

export function fakeEnv() {
  const env = {
    t: T0,
    sent: [] as Sent[],
    now: (): number => env.t,
    send: (to: Endpoint, msg: Message): void => {
      env.sent.push({ to, msg });
    },
    /** Remove and return what was sent (of one kind, if given). */
    take<K extends MessageKind>(kind?: K): { to: Endpoint; msg: Extract<Message, { type: K }> }[] {
      const out = env.sent.filter((s) => kind === undefined || s.msg.type === kind);
      env.sent = env.sent.filter((s) => !(kind === undefined || s.msg.type === kind));
      return out as { to: Endpoint; msg: Extract<Message, { type: K }> }[];
    },
  };
  return env;
}

/** Proxies ap-0 .. ap-(n-1) at 192.0.2.(i+1):7400, and a ring over the live ones. */
export function proxies(n: number) {
  const all: ProxyRef[] = Array.from({ length: n }, (_, i) => ({ id: `ap-${i}`, endpoint: ep(ip4(192, 0, 2, i + 1), 7400) }));
  const live = new Set(all.map((p) => p.id));
  let ring = new Ring(live);
  return {
    all,
    ring: () => ring,
    proxy: (id: string) => (live.has(id) ? all.find((p) => p.id === id) : undefined),
    byEndpoint: (e: Endpoint) => all.find((p) => epKey(p.endpoint) === epKey(e)),
    kill(id: string) {
      live.delete(id);
      ring = new Ring(live);
    },
    revive(id: string) {
      live.add(id);
      ring = new Ring(live);
    },
  };
}
