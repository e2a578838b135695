// Network namespaces and veth pairs for end-to-end tests. Everything a
// Topology creates carries a random suffix and is removed by destroy(),
// processes first; nothing is routed outside the namespaces it creates.

import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";

/** Why namespace tests cannot run here, or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.platform !== "linux") return "network namespaces are Linux only";
  if (process.getuid?.() !== 0) return "needs root, to create network namespaces";
  if (!existsSync("/dev/net/tun")) return "/dev/net/tun is missing";
  if (spawnSync("ip", ["netns", "list"]).status !== 0) return "`ip netns` is unavailable (install iproute2)";
  const probe = `pias-probe-${randomBytes(3).toString("hex")}`;
  if (spawnSync("ip", ["netns", "add", probe]).status !== 0) return "cannot create a network namespace here";
  spawnSync("ip", ["netns", "del", probe]);
  return undefined;
}

export interface RunResult {
  status: number | null;
  stdout: string;
  stderr: string;
}

export class Topology {
  readonly id = randomBytes(2).toString("hex");
  private readonly namespaces: string[] = [];
  private readonly processes: ChildProcess[] = [];

  /** The full name of namespace `name`. */
  ns(name: string): string {
    return `pias-${this.id}-${name}`;
  }

  addNamespace(name: string): string {
    const ns = this.ns(name);
    this.must(["ip", "netns", "add", ns]);
    this.namespaces.push(ns);
    this.exec(name, ["ip", "link", "set", "lo", "up"]);
    this.sysctl(name, "net.ipv4.conf.all.rp_filter", "0");
    this.sysctl(name, "net.ipv4.conf.default.rp_filter", "0");
    return ns;
  }

  sysctl(name: string, key: string, value: string): void {
    this.exec(name, ["sysctl", "-qw", `${key}=${value}`]);
  }

  /** A veth pair between namespaces a and b with the given addresses (CIDR), each end with `queues` RX and TX queues; returns the interface names. */
  link(a: string, aAddr: string, b: string, bAddr: string, mtu = 1500, queues = 1): [string, string] {
    const ia = `v${this.id}${a}${b}`.slice(0, 15);
    const ib = `v${this.id}${b}${a}`.slice(0, 15);
    const q = queues > 1 ? ["numtxqueues", String(queues), "numrxqueues", String(queues)] : [];
    this.must(["ip", "link", "add", ia, "netns", this.ns(a), "mtu", String(mtu), ...q, "type", "veth", "peer", "name", ib, "netns", this.ns(b), "mtu", String(mtu), ...q]);
    this.exec(a, ["ip", "addr", "add", aAddr, "dev", ia]);
    this.exec(b, ["ip", "addr", "add", bAddr, "dev", ib]);
    this.exec(a, ["ip", "link", "set", ia, "up"]);
    this.exec(b, ["ip", "link", "set", ib, "up"]);
    return [ia, ib];
  }

  /** Run a command in namespace `name` to completion; throws when it fails. */
  exec(name: string, cmd: string[], input?: string): string {
    const r = this.run(name, cmd, input);
    if (r.status !== 0) throw new Error(`[${name}] ${cmd.join(" ")}: exit ${r.status}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  run(name: string, cmd: string[], input?: string, timeoutMs = 30_000): RunResult {
    const r = spawnSync("ip", ["netns", "exec", this.ns(name), ...cmd], { encoding: "utf8", input, timeout: timeoutMs });
    return { status: r.status, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + (r.error ? String(r.error) : "") };
  }

  /** Start a long-running process in namespace `name`; destroy() kills it. */
  start(name: string, cmd: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcess {
    const p = spawn("ip", ["netns", "exec", this.ns(name), ...cmd], { stdio: ["pipe", "pipe", "pipe"], ...options });
    this.processes.push(p);
    return p;
  }

  private must(cmd: string[]): void {
    const r = spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8" });
    if (r.status !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.trim()}`);
  }

  async destroy(): Promise<void> {
    for (const p of this.processes) {
      if (p.exitCode === null && p.signalCode === null) {
        p.kill("SIGKILL");
        await new Promise((r) => p.once("exit", r));
      }
    }
    for (const ns of this.namespaces.reverse()) {
      // processes still inside (children of the ones killed) go with the namespace's pids
      const pids = spawnSync("ip", ["netns", "pids", ns], { encoding: "utf8" }).stdout.trim().split(/\s+/).filter(Boolean);
      for (const pid of pids) spawnSync("kill", ["-9", pid]);
      spawnSync("ip", ["netns", "del", ns]);
    }
    this.namespaces.length = 0;
  }
}

/** Resolves when `p` prints a line matching `re` on stdout or stderr (with the line), rejects on exit or timeout. */
export function waitForLine(p: ChildProcess, re: RegExp, timeoutMs = 15_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = "";
    const timer = setTimeout(() => finish(new Error(`no line matching ${re} within ${timeoutMs} ms; output:\n${seen.slice(-2000)}`)), timeoutMs);
    const onData = (chunk: Buffer): void => {
      seen += chunk.toString("utf8");
      const line = seen.split("\n").find((l) => re.test(l));
      if (line !== undefined) finish(null, line);
    };
    const onExit = (code: number | null): void => finish(new Error(`exited (${code}) before printing ${re}; output:\n${seen.slice(-2000)}`));
    const finish = (err: Error | null, line?: string): void => {
      clearTimeout(timer);
      p.stdout?.off("data", onData);
      p.stderr?.off("data", onData);
      p.off("exit", onExit);
      if (err) reject(err);
      else resolve(line!);
    };
    p.stdout?.on("data", onData);
    p.stderr?.on("data", onData);
    p.once("exit", onExit);
  });
}
