// Capture-file framing, input side: pcap (µs or ns, either byte order) and
// pcapng (any number of sections and interfaces, either byte order) records
// are found in a staging chunk the host read from the file and copied into a
// packet arena with headroom, one descriptor per packet.
//
// The host only moves file chunks; it never touches a record. Every length is
// checked against the chunk before it is read; a corrupt file sets an error
// code and stops, never traps. No allocation.

import { CaptureError, CaptureFormat, Desc, Layout } from "../shared/abi";
import { linkSupported } from "../wire/link";
import { MAX_INTERFACES, addInterface, interfaceCount, ifaceLink, ifaceSnaplen, ifaceSeconds, resetInterfaces } from "./interfaces";

const PCAP_MAGIC_US: u32 = 0xa1b2c3d4;
const PCAP_MAGIC_NS: u32 = 0xa1b23c4d;
const PCAP_HEADER: u32 = 24;
const PCAP_RECORD: u32 = 16;
const PCAPNG_SHB: u32 = 0x0a0d0d0a;
const PCAPNG_BOM: u32 = 0x1a2b3c4d;
const BLOCK_IDB: u32 = 1;
const BLOCK_PB: u32 = 2; // obsolete Packet Block
const BLOCK_SPB: u32 = 3;
const BLOCK_EPB: u32 = 6;
const OPT_END: u32 = 0;
const OPT_IF_TSRESOL: u32 = 9;
const OPT_IF_TSOFFSET: u32 = 14;
/** Largest pcapng block accepted (a maximal packet plus generous options). */
const MAX_BLOCK: u32 = <u32>Layout.MAX_PACKET + 65536;

export let format: CaptureFormat = CaptureFormat.Unknown;
let swapped = false; // byte order of the current file (pcap) or section (pcapng)
export let pcapNanos = false;
export let pcapLink: u32 = 0;
let headerDone = false;
let sectionBase: u32 = 0; // global number of the current section's interface 0
let sectionCount: u32 = 0;
let consumed: u32 = 0;
let fileOffset: f64 = 0;
let error: CaptureError = CaptureError.Ok;
let errorOffset: f64 = 0;
let strictLinks = false;
/** Link type of the packet that stopped a strict scan. */
let badLink: u32 = 0;

/** Exported: refuse packets on link types the data plane cannot parse (replay), instead of passing them on. */
export function cap_strict_links(on: bool): void {
  strictLinks = on;
}

export function cap_error_link(): u32 { return badLink; }

@inline function rd32(p: usize): u32 {
  let v = load<u32>(p);
  return swapped ? bswap<u32>(v) : v;
}

@inline function rd16(p: usize): u32 {
  let v = <u32>load<u16>(p);
  return swapped ? <u32>bswap<u16>(<u16>v) : v;
}

function fail(e: CaptureError, at: usize, stage: usize): u32 {
  error = e;
  errorOffset = fileOffset + <f64>(at - stage);
  return 0;
}

export function cap_reset(): void {
  format = CaptureFormat.Unknown;
  swapped = false;
  pcapNanos = false;
  pcapLink = 0;
  headerDone = false;
  sectionBase = 0;
  sectionCount = 0;
  consumed = 0;
  fileOffset = 0;
  error = CaptureError.Ok;
  errorOffset = 0;
  badLink = 0;
  resetInterfaces();
}

export function cap_consumed(): u32 { return consumed; }
export function cap_error(): u32 { return error; }
export function cap_error_offset(): f64 { return errorOffset; }
export function cap_format(): u32 { return format; }
export function cap_interfaces(): u32 { return interfaceCount(); }
export function cap_linktype(iface: u32): u32 { return format == CaptureFormat.Pcap ? pcapLink : ifaceLink(iface); }

// Arena placement and descriptor filling shared by both formats.
let arenaPos: usize = 0;
let arenaEnd: usize = 0;

@inline function fits(len: u32): bool {
  return arenaPos + <usize>len + Layout.HEADROOM <= arenaEnd;
}

function place(d: usize, src: usize, caplen: u32, wirelen: u32, link: u32, iface: u32, tsHi: u32, tsLo: u32, time: u32): void {
  memory.copy(arenaPos, src, caplen);
  store<u32>(d + Desc.OFF, <u32>arenaPos);
  store<u32>(d + Desc.LEN, caplen);
  store<u32>(d + Desc.WIRELEN, wirelen > caplen ? wirelen : caplen);
  store<u16>(d + Desc.LINK, <u16>link);
  store<u16>(d + Desc.IFACE, <u16>iface);
  store<u32>(d + Desc.TS_HI, tsHi);
  store<u32>(d + Desc.TS_LO, tsLo);
  store<u32>(d + Desc.TIME, time);
  store<u32>(d + Desc.VERDICT, 0); // verdict, reason, aux
  arenaPos += ((<usize>caplen + 7) & ~<usize>7) + Layout.HEADROOM;
}

/**
 * Exported: frame records from [stage, stage + stageLen) into the arena and
 * `desc`; returns the number of packets. cap_consumed() tells how many stage
 * bytes were used up (whole records only); cap_error() is nonzero on a corrupt
 * file. With `eof`, bytes left that are not a whole record are an error.
 */
export function cap_scan(stage: usize, stageLen: u32, eof: bool, desc: usize, maxPackets: u32, arena: usize, arenaLen: u32): u32 {
  consumed = 0;
  if (error != CaptureError.Ok) return 0;
  arenaPos = arena + Layout.HEADROOM;
  arenaEnd = arena + arenaLen;
  let p = stage;
  let end = stage + stageLen;
  if (format == CaptureFormat.Unknown) {
    if (stageLen < 4) return eof ? fail(stageLen == 0 ? CaptureError.BadMagic : CaptureError.Truncated, p, stage) : 0;
    let m = load<u32>(p);
    if (m == PCAP_MAGIC_US || m == PCAP_MAGIC_NS) { format = CaptureFormat.Pcap; swapped = false; pcapNanos = m == PCAP_MAGIC_NS; }
    else if (m == bswap<u32>(PCAP_MAGIC_US) || m == bswap<u32>(PCAP_MAGIC_NS)) { format = CaptureFormat.Pcap; swapped = true; pcapNanos = m == bswap<u32>(PCAP_MAGIC_NS); }
    else if (m == PCAPNG_SHB) format = CaptureFormat.PcapNg;
    else return fail(CaptureError.BadMagic, p, stage);
  }
  let n: u32 = 0;
  let arenaFull = false;
  if (format == CaptureFormat.Pcap) {
    if (!headerDone) {
      if (stageLen < PCAP_HEADER) return eof ? fail(CaptureError.Truncated, p, stage) : 0;
      if (rd16(p + 4) != 2) return fail(CaptureError.BadHeader, p, stage);
      pcapLink = rd32(p + 20) & 0xffff;
      if (strictLinks && !linkSupported(pcapLink)) { badLink = pcapLink; return fail(CaptureError.UnsupportedLinkType, p, stage); }
      headerDone = true;
      p += PCAP_HEADER;
    }
    while (n < maxPackets) {
      if (p + PCAP_RECORD > end) break;
      let caplen = rd32(p + 8);
      if (caplen > <u32>Layout.MAX_PACKET) return fail(CaptureError.RecordTooLarge, p, stage);
      if (p + PCAP_RECORD + caplen > end) break;
      if (!fits(caplen)) { arenaFull = true; break; }
      let sec = rd32(p);
      place(desc + <usize>n * Layout.DESC_SIZE, p + PCAP_RECORD, caplen, rd32(p + 12), pcapLink, 0, sec, rd32(p + 4), sec);
      n++;
      p += PCAP_RECORD + caplen;
    }
  } else {
    while (n < maxPackets) {
      if (p + 12 > end) break;
      let type = load<u32>(p); // the SHB type reads the same in both byte orders
      if (type == PCAPNG_SHB) {
        let bom = load<u32>(p + 8);
        if (bom == PCAPNG_BOM) swapped = false;
        else if (bom == bswap<u32>(PCAPNG_BOM)) swapped = true;
        else return fail(CaptureError.BadHeader, p, stage);
      } else {
        type = rd32(p);
      }
      let blen = rd32(p + 4);
      if (blen < 12 || (blen & 3) != 0 || blen > MAX_BLOCK) return fail(CaptureError.BadBlock, p, stage);
      if (p + blen > end) break;
      if (rd32(p + blen - 4) != blen) return fail(CaptureError.BadBlock, p, stage);
      let body = p + 8;
      let bodyEnd = p + blen - 4;
      if (type == PCAPNG_SHB) {
        if (blen < 28 || rd16(p + 12) != 1) return fail(CaptureError.BadHeader, p, stage);
        sectionBase = interfaceCount();
        sectionCount = 0;
      } else if (type == BLOCK_IDB) {
        if (blen < 20) return fail(CaptureError.BadBlock, p, stage);
        if (interfaceCount() >= MAX_INTERFACES) return fail(CaptureError.BadBlock, p, stage);
        let resol: u32 = 6;
        let offset: i64 = 0;
        let o = body + 8;
        while (o + 4 <= bodyEnd) {
          let code = rd16(o), olen = rd16(o + 2);
          if (code == OPT_END) break;
          if (o + 4 + olen > bodyEnd) return fail(CaptureError.BadBlock, p, stage);
          if (code == OPT_IF_TSRESOL && olen >= 1) resol = <u32>load<u8>(o + 4);
          if (code == OPT_IF_TSOFFSET && olen >= 8) {
            let lo = rd32(o + 4), hi = rd32(o + 8);
            offset = swapped ? <i64>((<u64>lo << 32) | <u64>hi) : <i64>((<u64>hi << 32) | <u64>lo);
          }
          o += 4 + ((olen + 3) & ~3);
        }
        if (!addInterface(rd16(body), rd32(body + 4), resol, offset)) return fail(CaptureError.BadHeader, p, stage);
        sectionCount++;
      } else if (type == BLOCK_EPB || type == BLOCK_PB) {
        if (blen < 32) return fail(CaptureError.BadBlock, p, stage);
        let local = type == BLOCK_EPB ? rd32(body) : rd16(body);
        let caplen = rd32(body + 12);
        let wirelen = rd32(body + 16);
        if (local >= sectionCount) return fail(CaptureError.UnknownInterface, p, stage);
        if (caplen > <u32>Layout.MAX_PACKET) return fail(CaptureError.RecordTooLarge, p, stage);
        if (body + 20 + caplen > bodyEnd) return fail(CaptureError.BadBlock, p, stage);
        if (!fits(caplen)) { arenaFull = true; break; }
        let iface = sectionBase + local;
        if (strictLinks && !linkSupported(ifaceLink(iface))) { badLink = ifaceLink(iface); return fail(CaptureError.UnsupportedLinkType, p, stage); }
        let hi = rd32(body + 4), lo = rd32(body + 8);
        place(desc + <usize>n * Layout.DESC_SIZE, body + 20, caplen, wirelen, ifaceLink(iface), iface, hi, lo, ifaceSeconds(iface, hi, lo));
        n++;
      } else if (type == BLOCK_SPB) {
        if (blen < 16) return fail(CaptureError.BadBlock, p, stage);
        if (sectionCount == 0) return fail(CaptureError.UnknownInterface, p, stage);
        let wirelen = rd32(body);
        let caplen = <u32>(bodyEnd - (body + 4));
        if (wirelen < caplen) caplen = wirelen;
        let snap = ifaceSnaplen(sectionBase);
        if (snap != 0 && snap < caplen) caplen = snap;
        if (caplen > <u32>Layout.MAX_PACKET) return fail(CaptureError.RecordTooLarge, p, stage);
        if (!fits(caplen)) { arenaFull = true; break; }
        if (strictLinks && !linkSupported(ifaceLink(sectionBase))) { badLink = ifaceLink(sectionBase); return fail(CaptureError.UnsupportedLinkType, p, stage); }
        place(desc + <usize>n * Layout.DESC_SIZE, body + 4, caplen, wirelen, ifaceLink(sectionBase), sectionBase, 0, 0, 0);
        n++;
      }
      // other blocks (name resolution, statistics, custom, ...) carry no packets
      p += blen;
    }
  }
  consumed = <u32>(p - stage);
  fileOffset += <f64>consumed;
  if (eof && p < end && n < maxPackets && !arenaFull && n == 0) {
    // the stage holds all that is left of the file, yet no whole record follows
    return fail(CaptureError.Truncated, p, stage);
  }
  return n;
}
