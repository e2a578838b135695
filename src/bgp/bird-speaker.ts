// Makes a BIRD announce what pias wants, through its control socket: reads
// `show protocols`, derives each prefix's state from its two static protocols
// (src/bgp/bird-config.ts) and enables or disables them until BIRD matches.
// Level-triggered: run again and again, it also undoes drift (an operator's
// `birdc configure` resetting a protocol, a BIRD restarted). Works the same on
// the managed BIRD and on an operator's; it never writes BIRD's configuration.

import { BirdControl, BirdError, neighborAddress, parseProtocols, type ProtocolRow } from "./bird-control.js";
import { prefixProtocols, type PrefixState } from "./bird-config.js";

export interface Applied {
  /** Each prefix's state in BIRD after this pass. */
  readonly states: Map<string, PrefixState>;
  /** Prefixes wanted announced whose protocols BIRD does not have (an external BIRD without pias's snippet). */
  readonly missing: string[];
}

const enabled = (row: ProtocolRow | undefined): boolean => row !== undefined && row.state !== "down";

export class BirdSpeaker {
  private control: BirdControl | null = null;
  private readonly neighbors = new Map<string, string>();

  /** `socketPath`: BIRD's control socket; null until a connection is adopted (the managed BIRD's). */
  constructor(public socketPath: string | null) {}

  /** Use a connection opened elsewhere (the managed BIRD's, right after its start). */
  adopt(control: BirdControl): void {
    this.control?.close();
    this.control = control;
    this.socketPath = control.path;
  }

  /** The open connection, reconnecting when the last one failed. Throws a BirdError. */
  async connection(): Promise<BirdControl> {
    if (this.socketPath === null) throw new BirdError("no BIRD control socket yet", 0);
    if (!this.control?.open) this.control = await BirdControl.connect(this.socketPath);
    return this.control;
  }

  close(): void {
    this.control?.close();
    this.control = null;
  }

  async protocols(): Promise<ProtocolRow[]> {
    return parseProtocols(await (await this.connection()).command("show protocols"));
  }

  /** The BGP protocols among `rows`, by name, with their neighbour's address (asked once per protocol). */
  async bgpNeighbors(rows: readonly ProtocolRow[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (const r of rows) {
      if (r.proto !== "BGP") continue;
      let address = this.neighbors.get(r.name);
      if (address === undefined) {
        address = neighborAddress(await (await this.connection()).command(`show protocols all "${r.name}"`)) ?? r.name;
        this.neighbors.set(r.name, address);
      }
      out.set(r.name, address);
    }
    return out;
  }

  /** Enable and disable prefixes' protocols so BIRD does what `wanted` says. Throws a BirdError when a command fails. */
  async apply(wanted: ReadonlyMap<string, PrefixState>, rows: readonly ProtocolRow[]): Promise<Applied> {
    const byName = new Map(rows.map((r) => [r.name, r]));
    const states = new Map<string, PrefixState>();
    const missing: string[] = [];
    for (const [prefix, want] of wanted) {
      const names = prefixProtocols(prefix);
      const normal = byName.get(names.normal);
      const graceful = byName.get(names.graceful);
      if (!normal || !graceful) {
        states.set(prefix, enabled(normal) ? "announced" : enabled(graceful) ? "graceful" : "withdrawn");
        if (want !== "withdrawn") missing.push(prefix);
        continue;
      }
      // order matters: the new route goes up before the old one goes down, so the prefix never disappears
      const steps: string[] = [];
      if (want === "announced") {
        if (!enabled(normal)) steps.push(`enable "${names.normal}"`);
        if (enabled(graceful)) steps.push(`disable "${names.graceful}"`);
      } else if (want === "graceful") {
        if (!enabled(graceful)) steps.push(`enable "${names.graceful}"`);
        if (enabled(normal)) steps.push(`disable "${names.normal}"`);
      } else {
        if (enabled(normal)) steps.push(`disable "${names.normal}"`);
        if (enabled(graceful)) steps.push(`disable "${names.graceful}"`);
      }
      for (const step of steps) await (await this.connection()).command(step);
      states.set(prefix, want);
    }
    return { states, missing };
  }

  /** Have BIRD re-read its configuration file. Throws a BirdError (8002 with BIRD's message) when BIRD refuses it. */
  async configure(path: string): Promise<void> {
    await (await this.connection()).command(`configure "${path}"`);
  }
}
