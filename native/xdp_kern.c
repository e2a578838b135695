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
// It never drops and never changes a frame's bytes. A served frame whose
// queue has no socket is passed as well (bpf_redirect_map's fallback).
//
// With several workers (`steer` says how many; worker w holds the sockets of
// the queues q with q % workers == w), every redirected frame carries 8
// bytes of XDP metadata in front of it: a magic and the worker that owns it
// -- for a frame to the proxy's own address, the worker whose slice of the
// NAT port range holds its port (as native/steer.bpf.c computes it for TUN),
// else the worker of the queue it came in on. The kernel will not redirect
// into a socket bound to another queue, so the socket's worker hands a frame
// it does not own to its owner (native/xdp.cc, "hand-off").

#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "steer_config.h"

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

// The workers and their NAT port slices (steer_config.h); workers <= 1: no metadata.
struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct steer_config);
} steer SEC(".maps");

// The metadata in front of a redirected frame: bytes 0xf0 'p' 'i' 'a' (an
// IPv4 source no tunnel header the core writes can hold), then the owner.
#define META_MAGIC 0x616970f0
struct meta {
  __u32 magic;
  __u32 owner;
};

// Per-CPU counters, read by user space (Stat* in native/xdp.cc)
enum { STAT_REDIRECTED, STAT_PASSED, STAT_NO_SOCKET, STAT_FOREIGN, STAT_NO_META, STAT_COUNT };

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

static __always_inline __u32 be16at(const __u8 *p) { return ((__u32)p[0] << 8) | p[1]; }

/*
 * The worker owning the IP packet at `off` when it is addressed to the
 * proxy: by its destination port (TCP, UDP), echo identifier (echo reply)
 * or, for an ICMP error, the quoted packet's source port or identifier.
 * -1 when it is not to the proxy or names no port. *inner: where an
 * IP-in-IP packet's inner packet starts (its family in *inner6), else 0.
 */
static __always_inline int ip_owner(const struct steer_config *c, void *data, void *end, __u32 off, int v6, __u32 *inner, int *inner6) {
  __u8 *h = data + off;
  __u32 l4;
  __u8 proto;
  int to_proxy;
  *inner = 0;
  if (!v6) {
    if ((void *)(h + 20) > end) return -1;
    l4 = off + ((h[0] & 15) << 2);
    proto = h[9];
    if ((h[6] & 0x3f) != 0 || h[7] != 0) return -1; /* a fragment: no ports after the first */
    to_proxy = c->has4 && *(__u32 *)(h + 16) == c->proxy4;
  } else {
    if ((void *)(h + 40) > end) return -1;
    l4 = off + 40;
    proto = h[6];
    __u32 *d = (__u32 *)(h + 24);
    to_proxy = c->has6 && d[0] == c->proxy6[0] && d[1] == c->proxy6[1] && d[2] == c->proxy6[2] && d[3] == c->proxy6[3];
  }
  if (proto == PROTO_IPIP || proto == PROTO_IPV6) {
    *inner = l4;
    *inner6 = proto == PROTO_IPV6;
    return -1;
  }
  if (!to_proxy || l4 > 128) return -1;
  __u8 *t = data + l4;
  if ((void *)(t + 8) > end) return -1;
  if (proto == PROTO_TCP || proto == PROTO_UDP) return port_owner(c, be16at(t + 2));
  __u32 echo_reply = v6 ? 129 : 0;
  if ((proto == PROTO_ICMP && !v6) || (proto == PROTO_ICMPV6 && v6)) {
    if (t[0] == echo_reply) return port_owner(c, be16at(t + 6));
    int error = v6 ? (t[0] >= 1 && t[0] <= 4) : (t[0] == 3 || t[0] == 4 || t[0] == 5 || t[0] == 11 || t[0] == 12);
    if (!error) return -1;
    /* the quoted packet: the proxy's P:x is its source */
    __u8 *q = t + 8;
    __u32 ql4;
    __u8 qproto;
    if (!v6) {
      if ((void *)(q + 20) > end) return -1;
      ql4 = (q[0] & 15) << 2;
      qproto = q[9];
    } else {
      if ((void *)(q + 40) > end) return -1;
      ql4 = 40;
      qproto = q[6];
    }
    if (ql4 > 60) return -1;
    __u8 *ql = q + ql4;
    if ((void *)(ql + 8) > end) return -1;
    if (qproto == PROTO_TCP || qproto == PROTO_UDP) return port_owner(c, be16at(ql));
    if (qproto == PROTO_ICMP || qproto == PROTO_ICMPV6) return port_owner(c, be16at(ql + 4));
  }
  return -1;
}

/* The worker that owns a served frame arriving on `queue`. */
static __always_inline __u32 frame_owner(const struct steer_config *c, void *data, void *end, __u32 off, __u16 proto, __u32 queue) {
  __u32 inner;
  int inner6 = 0;
  int w = ip_owner(c, data, end, off, proto == bpf_htons(ETH_P_IPV6), &inner, &inner6);
  if (w < 0 && inner != 0 && inner < 128) {
    __u32 ignored;
    int ignored6;
    w = ip_owner(c, data, end, inner, inner6, &ignored, &ignored6); /* IP-in-IP: the inner packet decides */
  }
  return w >= 0 ? (__u32)w : queue % c->workers;
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
  __u32 zero = 0;
  struct steer_config *c = bpf_map_lookup_elem(&steer, &zero);
  if (c && c->workers > 1) {
    __u32 owner = frame_owner(c, data, end, off, proto, queue);
    if (bpf_xdp_adjust_meta(ctx, -(int)sizeof(struct meta)) == 0) {
      struct meta *m = (void *)(long)ctx->data_meta;
      if ((void *)(m + 1) <= (void *)(long)ctx->data) {
        m->magic = META_MAGIC;
        m->owner = owner;
      }
      if (owner != queue % c->workers) count(STAT_FOREIGN, 0);
    } else {
      count(STAT_NO_META, 0); /* this driver keeps no metadata: the frame stays with this queue's worker */
    }
  }
  __u32 key = *slot * MAX_QUEUES + queue;
  int action = bpf_redirect_map(&xsks, key, XDP_PASS);
  return count(action == XDP_REDIRECT ? STAT_REDIRECTED : STAT_NO_SOCKET, action);
}

char _license[] SEC("license") = "GPL";
