// A real etcd cluster for tests: `size` members of Debian's etcd-server on
// one host (loopback by default, or an address inside a namespace the test
// made), data in a fresh directory under /dev/shm (or the temp dir), every
// member killed and every directory removed by destroy(). Members can be
// killed and started again to test failures.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ETCD = "/usr/bin/etcd";

/** Why a real etcd cluster cannot run here, or undefined when it can. */
export function etcdUnavailable(): string | undefined {
  if (!existsSync(ETCD)) return "etcd is not installed (Debian etcd-server; .ci/run installs it)";
  if (spawnSync(ETCD, ["--version"]).status !== 0) return `${ETCD} --version fails`;
  return undefined;
}

/** A free TCP port on 127.0.0.1 (bound and released: a test-only race we accept). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface EtcdMember {
  readonly name: string;
  readonly client: string;
  readonly peer: string;
  process: ChildProcess | null;
  log: string;
}

export interface EtcdClusterOptions {
  readonly size?: number;
  /** Member i listens on hosts[i] (default 127.0.0.1 for all, on free ports; other hosts use 2379/2380). */
  readonly hosts?: readonly string[];
  /** Starts a long-running command (default: spawn it here); a namespace test passes its Topology's start. */
  readonly spawn?: (cmd: string[]) => ChildProcess;
  /** Runs a command to completion (etcdctl; default: here). */
  readonly run?: (cmd: string[]) => { status: number | null; stdout: string; stderr: string };
}

function runHere(cmd: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", env: { ...process.env, ETCDCTL_API: "3" } });
  return { status: r.status, stdout: r.stdout ?? "", stderr: r.stderr ?? "" };
}

export class EtcdCluster {
  readonly members: EtcdMember[] = [];
  private readonly dir: string;
  private readonly token = `pias-test-${randomBytes(4).toString("hex")}`;

  private constructor(private readonly opts: EtcdClusterOptions) {
    this.dir = mkdtempSync(join(existsSync("/dev/shm") ? "/dev/shm" : tmpdir(), "pias-etcd-"));
  }

  /** Start every member and wait until the cluster answers a linearizable read. */
  static async start(opts: EtcdClusterOptions = {}): Promise<EtcdCluster> {
    const c = new EtcdCluster(opts);
    const size = opts.size ?? 3;
    for (let i = 0; i < size; i++) {
      const host = opts.hosts?.[i] ?? "127.0.0.1";
      const loopback = opts.hosts === undefined;
      const [cp, pp] = loopback ? [await freePort(), await freePort()] : [2379, 2380];
      c.members.push({ name: `e${i + 1}`, client: `http://${host}:${cp}`, peer: `http://${host}:${pp}`, process: null, log: "" });
    }
    try {
      for (let i = 0; i < size; i++) c.startMember(i, "new");
      await c.waitHealthy(c.members.map((_, i) => i));
    } catch (err) {
      c.destroy();
      throw err;
    }
    return c;
  }

  get endpoints(): string[] {
    return this.members.map((m) => m.client);
  }

  /** (Re)start member i; "existing" rejoins the cluster it left. */
  startMember(i: number, state: "new" | "existing" = "existing"): void {
    const m = this.members[i];
    const cmd = [
      ETCD, "--name", m.name, "--data-dir", join(this.dir, m.name),
      "--listen-client-urls", m.client, "--advertise-client-urls", m.client,
      "--listen-peer-urls", m.peer, "--initial-advertise-peer-urls", m.peer,
      "--initial-cluster", this.members.map((x) => `${x.name}=${x.peer}`).join(","),
      "--initial-cluster-state", state, "--initial-cluster-token", this.token,
      "--heartbeat-interval", "100", "--election-timeout", "1000", "--logger", "zap", "--log-level", "warn",
    ];
    const p = this.opts.spawn ? this.opts.spawn(cmd) : spawn(cmd[0], cmd.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    m.log = "";
    const keep = (b: Buffer) => (m.log = (m.log + b.toString()).slice(-4000));
    p.stdout?.on("data", keep);
    p.stderr?.on("data", keep);
    m.process = p;
  }

  /** SIGKILL member i and wait for it to exit. */
  async kill(i: number): Promise<void> {
    const p = this.members[i].process;
    this.members[i].process = null;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill("SIGKILL");
    await new Promise((r) => p.once("exit", r));
  }

  /** Until every member in `which` answers etcdctl endpoint health (15 s at most). */
  async waitHealthy(which: number[], timeoutMs = 15_000): Promise<void> {
    const t0 = Date.now();
    for (;;) {
      const endpoints = which.map((i) => this.members[i].client).join(",");
      const r = (this.opts.run ?? runHere)(["etcdctl", "--endpoints", endpoints, "--command-timeout", "2s", "endpoint", "health"]);
      if (r.status === 0) return;
      if (Date.now() - t0 > timeoutMs) throw new Error(`etcd did not become healthy: ${r.stderr.trim()}\n${this.members.map((m) => `--- ${m.name}\n${m.log.slice(-1000)}`).join("\n")}`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  /** etcdctl against the cluster (for checks a test wants to see from outside pias). */
  etcdctl(args: string[]): string {
    const r = (this.opts.run ?? runHere)(["etcdctl", "--endpoints", this.endpoints.join(","), ...args]);
    if (r.status !== 0) throw new Error(`etcdctl ${args.join(" ")}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  destroy(): void {
    for (const m of this.members) {
      if (m.process && m.process.exitCode === null && m.process.signalCode === null) m.process.kill("SIGKILL");
      m.process = null;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
