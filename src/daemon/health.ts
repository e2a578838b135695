// Health checks of a group's targets: TCP connect, UDP request/reply or HTTP
// GET, every intervalMs, with `fall` consecutive failures to mark an up target
// down and `rise` successes to bring it back. The checker only reports
// transitions; the daemon tells the data plane (DataPlane.setTargetUp).

import { connect } from "node:net";
import { createSocket } from "node:dgram";
import { request } from "node:http";
import type { GroupConfig, HealthConfig, TargetConfig } from "../config/types.js";
import { transportAddressKey } from "../net/ta.js";

export interface HealthChange {
  /** The group's key, as the data plane names it ("tcp 203.0.113.10:80"). */
  group: string;
  target: string;
  up: boolean;
  /** Why the last probe failed (when going down). */
  error?: string;
}

export interface TargetHealth {
  group: string;
  target: string;
  up: boolean;
  checks: number;
  failures: number;
  lastError: string | null;
}

interface Probe {
  group: string;
  target: TargetConfig;
  health: HealthConfig;
  /** Identity of the check's settings: a reload with other settings restarts it. */
  signature: string;
  up: boolean;
  streak: number;
  checks: number;
  failures: number;
  lastError: string | null;
  timer: NodeJS.Timeout;
  running: boolean;
}

/** One probe: resolves with null on success, or the reason it failed. */
export function probe(address: string, port: number, h: HealthConfig): Promise<string | null> {
  switch (h.check) {
    case "tcp":
      return probeTcp(address, port, h.timeoutMs);
    case "udp":
      return probeUdp(address, port, h);
    case "http":
      return probeHttp(address, port, h);
  }
}

function probeTcp(host: string, port: number, timeoutMs: number): Promise<string | null> {
  return new Promise((resolve) => {
    const s = connect({ host, port });
    const done = (err: string | null): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(err);
    };
    const timer = setTimeout(() => done(`no connection within ${timeoutMs} ms`), timeoutMs);
    s.once("connect", () => done(null));
    s.once("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
  });
}

function probeUdp(host: string, port: number, h: HealthConfig): Promise<string | null> {
  return new Promise((resolve) => {
    const s = createSocket(host.includes(":") ? "udp6" : "udp4");
    const done = (err: string | null): void => {
      clearTimeout(timer);
      s.close();
      resolve(err);
    };
    const timer = setTimeout(() => done(`no reply within ${h.timeoutMs} ms`), h.timeoutMs);
    s.on("message", (msg) => {
      if (h.expect === null || msg.toString("utf8").includes(h.expect)) done(null);
    });
    s.on("error", (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    // connected: an ICMP port unreachable comes back as ECONNREFUSED
    s.connect(port, host, () => s.send(h.send));
  });
}

function probeHttp(host: string, port: number, h: HealthConfig): Promise<string | null> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: h.path, method: "GET", timeout: h.timeoutMs, agent: false }, (res) => {
      res.resume();
      const status = res.statusCode ?? 0;
      resolve(status >= 200 && status < 400 ? null : `HTTP ${status}`);
    });
    req.on("timeout", () => req.destroy(new Error(`no answer within ${h.timeoutMs} ms`)));
    req.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });
}

export class HealthChecker {
  private readonly probes = new Map<string, Probe>();

  constructor(private readonly onChange: (change: HealthChange) => void) {}

  /** Check the targets of every group that has a health section; stop checks no longer configured. Targets keep their state across reloads. */
  configure(groups: readonly GroupConfig[]): void {
    const wanted = new Set<string>();
    for (const g of groups) {
      if (!g.health) continue;
      const key = transportAddressKey(g.protocol, g.addressBytes, g.port);
      for (const t of g.targets) {
        const id = `${key}\u0000${t.key}`;
        const signature = JSON.stringify([g.health, t.address, t.port]);
        wanted.add(id);
        const old = this.probes.get(id);
        if (old?.signature === signature) continue;
        if (old) clearInterval(old.timer);
        const p: Probe = {
          group: key, target: t, health: g.health, signature, up: old?.up ?? true, streak: 0,
          checks: old?.checks ?? 0, failures: old?.failures ?? 0, lastError: old?.lastError ?? null,
          timer: setInterval(() => void this.run(p), g.health.intervalMs), running: false,
        };
        p.timer.unref();
        this.probes.set(id, p);
        void this.run(p);
      }
    }
    for (const [id, p] of this.probes) {
      if (!wanted.has(id)) {
        clearInterval(p.timer);
        this.probes.delete(id);
      }
    }
  }

  private async run(p: Probe): Promise<void> {
    if (p.running) return; // the previous probe is still waiting for its timeout
    p.running = true;
    const err = await probe(p.target.address, p.health.port ?? p.target.port, p.health);
    p.running = false;
    if (this.probes.get(`${p.group}\u0000${p.target.key}`) !== p) return; // reconfigured meanwhile
    p.checks++;
    const ok = err === null;
    if (!ok) {
      p.failures++;
      p.lastError = err;
    }
    if (ok === p.up) {
      p.streak = 0;
      return;
    }
    p.streak++;
    if (p.streak >= (p.up ? p.health.fall : p.health.rise)) {
      p.up = ok;
      p.streak = 0;
      this.onChange({ group: p.group, target: p.target.key, up: ok, ...(ok ? {} : { error: err! }) });
    }
  }

  /** Every checked target's state. */
  status(): TargetHealth[] {
    return [...this.probes.values()].map((p) => ({ group: p.group, target: p.target.key, up: p.up, checks: p.checks, failures: p.failures, lastError: p.lastError }));
  }

  stop(): void {
    for (const p of this.probes.values()) clearInterval(p.timer);
    this.probes.clear();
  }
}
