// The virtio_net_hdr view (Link.VNET, assembly/shared/abi.ts): the 10-byte
// header a TUN device with IFF_VNET_HDR puts in front of every packet. Its
// u16 fields are little-endian (a virtio 1.0 / little-endian host's order),
// which is how linear memory loads them: no byte swap.
//
// Lengths are validated by parse.ts (checkVnet) before these are relied on.

import { Vnet, VnetFlag } from "../shared/abi";

@inline export function vnetFlags(h: usize): u32 { return <u32>load<u8>(h + Vnet.FLAGS); }
@inline export function vnetGsoType(h: usize): u32 { return <u32>load<u8>(h + Vnet.GSO_TYPE); }
@inline export function vnetHdrLen(h: usize): u32 { return <u32>load<u16>(h + Vnet.HDR_LEN); }
@inline export function vnetGsoSize(h: usize): u32 { return <u32>load<u16>(h + Vnet.GSO_SIZE); }
@inline export function vnetCsumStart(h: usize): u32 { return <u32>load<u16>(h + Vnet.CSUM_START); }
@inline export function vnetCsumOffset(h: usize): u32 { return <u32>load<u16>(h + Vnet.CSUM_OFFSET); }

@inline export function setVnetCsumStart(h: usize, v: u32): void { store<u16>(h + Vnet.CSUM_START, <u16>v); }

/** A header that asks nothing: no GSO, no partial checksum. */
@inline export function clearVnet(h: usize): void {
  store<u64>(h, 0);
  store<u16>(h + 8, 0);
}

/** A non-GSO packet whose transport checksum is partial, its region starting `csumStart` bytes into the IP packet. */
@inline export function setVnetPartial(h: usize, csumStart: u32, csumOffset: u32): void {
  clearVnet(h);
  store<u8>(h + Vnet.FLAGS, <u8>VnetFlag.NeedsCsum);
  store<u16>(h + Vnet.CSUM_START, <u16>csumStart);
  store<u16>(h + Vnet.CSUM_OFFSET, <u16>csumOffset);
}
