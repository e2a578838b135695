// Writing a packet's verdict into its descriptor, with the counters that go
// with it: one place for the pipeline and the established-flow fast path.

import { AuxFlag, Desc, HostWork, Reason, Stat, Verdict } from "./shared/abi";
import { bump, countDrop } from "./counters";

@inline export function drop(d: usize, r: Reason): void {
  store<u8>(d + Desc.VERDICT, <u8>Verdict.Drop);
  store<u8>(d + Desc.REASON, <u8>r);
  countDrop(r);
  bump(Stat.Dropped);
}

@inline export function toHost(d: usize, work: HostWork, aux: u32): void {
  store<u8>(d + Desc.VERDICT, <u8>Verdict.ToHost);
  store<u8>(d + Desc.REASON, <u8>work);
  store<u16>(d + Desc.AUX, <u16>aux);
  bump(Stat.ToHost);
}

@inline export function accept(d: usize, aux: u32): void {
  store<u8>(d + Desc.VERDICT, <u8>Verdict.Forward);
  store<u16>(d + Desc.AUX, <u16>aux);
  bump((aux & AuxFlag.Reflected) != 0 ? Stat.Reflected : Stat.Forwarded);
}
