// Network-order loads and stores over linear memory.
//
// "raw" values are 16/32/64-bit words loaded little-endian straight from
// packet bytes. Ones' complement sums do not depend on byte order (RFC 1071
// section 2(B)), so checksum arithmetic works on raw words and never swaps.
// Host-order values (ld16/ld32) are only for comparisons and arithmetic on
// lengths and offsets.

@inline export function ld8(p: usize): u32 { return <u32>load<u8>(p); }
@inline export function st8(p: usize, v: u32): void { store<u8>(p, <u8>v); }
@inline export function ld16(p: usize): u32 { return <u32>bswap<u16>(load<u16>(p)); }
@inline export function st16(p: usize, v: u32): void { store<u16>(p, bswap<u16>(<u16>v)); }
@inline export function ld32(p: usize): u32 { return bswap<u32>(load<u32>(p)); }
@inline export function st32(p: usize, v: u32): void { store<u32>(p, bswap<u32>(v)); }

@inline export function raw16(p: usize): u32 { return <u32>load<u16>(p); }
@inline export function setRaw16(p: usize, v: u32): void { store<u16>(p, <u16>v); }
@inline export function raw32(p: usize): u32 { return load<u32>(p); }
@inline export function setRaw32(p: usize, v: u32): void { store<u32>(p, v); }
@inline export function raw64(p: usize): u64 { return load<u64>(p); }
@inline export function setRaw64(p: usize, v: u64): void { store<u64>(p, v); }

/** Host-order 16-bit value to its raw (network-bytes, little-endian-loaded) form. */
@inline export function toRaw16(v: u32): u32 { return <u32>bswap<u16>(<u16>v); }
