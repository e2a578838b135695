// SPDX-License-Identifier: GPL-2.0
//
// The XDP program of pias's AF_XDP backend (loaded and attached through a
// bpf_link by native/xdp.cc). It redirects to the AF_XDP socket of the
// frame's receive queue only what pias serves: IPv4 or IPv6 (behind at most
// two VLAN tags) to an address in the `served` prefixes, which user space
// fills with the anycast prefixes (or group addresses) and the proxy's own
// addresses (so IP-in-IP to the proxy and NAT replies come too).
//
// Everything else -- ARP, neighbour discovery, the host's own addresses
// (SSH, the control plane of the host), frames too short to say where they
// go -- is XDP_PASS: the kernel handles it as if no program were attached.
// It never drops and never changes a frame. A served frame whose queue has
// no socket is passed as well (bpf_redirect_map's fallback).

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

// Keep in step with native/xdp.cc.
#define MAX_QUEUES 64
#define MAX_IFACES 16

struct lpm4 {
  __u32 prefixlen;
  __u8 addr[4];
};

struct lpm6 {
  __u32 prefixlen;
  __u8 addr[16];
};

// (interface slot * MAX_QUEUES + rx queue) -> AF_XDP socket
struct {
  __uint(type, BPF_MAP_TYPE_XSKMAP);
  __uint(max_entries, MAX_IFACES * MAX_QUEUES);
  __type(key, __u32);
  __type(value, __u32);
} xsks SEC(".maps");

// ifindex -> interface slot
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, MAX_IFACES);
  __type(key, __u32);
  __type(value, __u32);
} ifslots SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 4096);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct lpm4);
  __type(value, __u8);
} served4 SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, 4096);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct lpm6);
  __type(value, __u8);
} served6 SEC(".maps");

// Per-CPU counters, read by user space (Stat* in native/xdp.cc)
enum { STAT_REDIRECTED, STAT_PASSED, STAT_NO_SOCKET, STAT_COUNT };

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, STAT_COUNT);
  __type(key, __u32);
  __type(value, __u64);
} stats SEC(".maps");

static __always_inline int count(__u32 stat, int action) {
  __u64 *n = bpf_map_lookup_elem(&stats, &stat);
  if (n) *n += 1;
  return action;
}

static __always_inline int served(void *data, void *end, __u32 off, __u16 proto) {
  if (proto == bpf_htons(ETH_P_IP)) {
    struct lpm4 k = {.prefixlen = 32};
    if (data + off + 20 > end) return 0;
    __builtin_memcpy(k.addr, data + off + 16, 4);
    return bpf_map_lookup_elem(&served4, &k) != 0;
  }
  if (proto == bpf_htons(ETH_P_IPV6)) {
    struct lpm6 k = {.prefixlen = 128};
    if (data + off + 40 > end) return 0;
    __builtin_memcpy(k.addr, data + off + 24, 16);
    return bpf_map_lookup_elem(&served6, &k) != 0;
  }
  return 0;
}

SEC("xdp")
int pias_xdp(struct xdp_md *ctx) {
  void *data = (void *)(long)ctx->data;
  void *end = (void *)(long)ctx->data_end;
  if (data + ETH_HLEN > end) return count(STAT_PASSED, XDP_PASS);
  __u16 proto = ((struct ethhdr *)data)->h_proto;
  __u32 off = ETH_HLEN;
#pragma unroll
  for (int i = 0; i < 2; i++) {
    if (proto != bpf_htons(ETH_P_8021Q) && proto != bpf_htons(ETH_P_8021AD)) break;
    if (data + off + 4 > end) return count(STAT_PASSED, XDP_PASS);
    proto = *(__u16 *)(data + off + 2);
    off += 4;
  }
  if (!served(data, end, off, proto)) return count(STAT_PASSED, XDP_PASS);
  __u32 ifindex = ctx->ingress_ifindex;
  __u32 *slot = bpf_map_lookup_elem(&ifslots, &ifindex);
  __u32 queue = ctx->rx_queue_index;
  if (!slot || queue >= MAX_QUEUES) return count(STAT_NO_SOCKET, XDP_PASS);
  __u32 key = *slot * MAX_QUEUES + queue;
  int action = bpf_redirect_map(&xsks, key, XDP_PASS);
  return count(action == XDP_REDIRECT ? STAT_REDIRECTED : STAT_NO_SOCKET, action);
}

char _license[] SEC("license") = "GPL";
