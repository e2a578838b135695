// The TUN steering program (TUNSETSTEERINGEBPF) of a multi-queue pias TUN:
// picks the queue — queue i is worker i — for every packet the kernel sends
// into the device, so that both directions of a flow reach the worker that
// owns it and workers never hand packets to each other:
//
//   - to the proxy's own address (replies of NAT bindings, P:x): the worker
//     whose slice of the NAT port range holds x (ICMP echo replies: the
//     identifier; ICMP errors: the quoted packet's source port or identifier);
//   - IP-in-IP to the proxy: the inner packet, as below;
//   - anything else (clients' packets to the anycast addresses): a symmetric
//     hash of addresses, protocol and ports (addresses and protocol only for
//     fragments, whose later pieces carry no ports).
//
// The loader (native/steering.cc) sets `cfg` before loading. Returns a queue
// hint; the kernel takes it modulo the number of queues. Compiled with clang
// at install time (native/build-bpf.sh); never loaded where clang, libbpf or
// the kernel refuse (the daemon then runs one worker).

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "steer_config.h"

const volatile struct steer_config cfg = {};

static __always_inline __u32 mix(__u32 h) {
  h ^= h >> 16;
  h *= 0x85ebca6b;
  h ^= h >> 13;
  h *= 0xc2b2ae35;
  h ^= h >> 16;
  return h;
}

/* The worker owning NAT port `port` (host order), or -1 outside the range. */
static __always_inline int owner(__u32 port) {
  return port_owner(&cfg, port);
}

/* Source port (or echo identifier) of the packet an ICMP error at `icmp` quotes: the proxy's P:x. */
static __always_inline int quotedOwner(struct __sk_buff *skb, __u32 icmp, int v6) {
  __u8 q[40];
  __u32 qip = icmp + 8;
  __u32 ql4;
  __u8 proto;
  if (!v6) {
    if (bpf_skb_load_bytes(skb, qip, q, 20)) return -1;
    ql4 = qip + ((q[0] & 15) << 2);
    proto = q[9];
  } else {
    if (bpf_skb_load_bytes(skb, qip, q, 40)) return -1;
    ql4 = qip + 40;
    proto = q[6];
  }
  __u8 l4[8];
  if (bpf_skb_load_bytes(skb, ql4, l4, 8)) return -1;
  if (proto == PROTO_TCP || proto == PROTO_UDP) return owner(((__u32)l4[0] << 8) | l4[1]);
  if (proto == PROTO_ICMP || proto == PROTO_ICMPV6) return owner(((__u32)l4[4] << 8) | l4[5]);
  return -1;
}

/*
 * Symmetric flow hash of the IP packet at `off`. *owned: the worker owning
 * its NAT port when it is addressed to the proxy, else -1. *inner: where an
 * IP-in-IP packet's inner packet starts, else 0.
 */
static __always_inline __u32 flowHash(struct __sk_buff *skb, __u32 off, int *owned, __u32 *inner) {
  __u8 h[40];
  __u32 a = 0, l4, proto;
  int fragment = 0;
  *owned = -1;
  *inner = 0;
  if (bpf_skb_load_bytes(skb, off, h, 1)) return 0;
  if ((h[0] >> 4) == 4) {
    if (bpf_skb_load_bytes(skb, off, h, 20)) return 0;
    __u32 src, dst;
    __builtin_memcpy(&src, h + 12, 4);
    __builtin_memcpy(&dst, h + 16, 4);
    a = src ^ dst;
    proto = h[9];
    l4 = off + ((h[0] & 15) << 2);
    fragment = (h[6] & 0x3f) != 0 || h[7] != 0 || (h[6] & 0x20) != 0;
    if (cfg.has4 && dst == cfg.proxy4 && !fragment) {
      __u8 t[8];
      if ((proto == PROTO_TCP || proto == PROTO_UDP) && !bpf_skb_load_bytes(skb, l4, t, 4)) {
        *owned = owner(((__u32)t[2] << 8) | t[3]);
      } else if (proto == PROTO_ICMP && !bpf_skb_load_bytes(skb, l4, t, 8)) {
        if (t[0] == 0) *owned = owner(((__u32)t[4] << 8) | t[5]);                      /* echo reply */
        else if (t[0] == 3 || t[0] == 4 || t[0] == 5 || t[0] == 11 || t[0] == 12) *owned = quotedOwner(skb, l4, 0);
      }
    }
  } else if ((h[0] >> 4) == 6) {
    if (bpf_skb_load_bytes(skb, off, h, 40)) return 0;
    __u32 w[8];
    __builtin_memcpy(w, h + 8, 32);
    a = w[0] ^ w[1] ^ w[2] ^ w[3] ^ w[4] ^ w[5] ^ w[6] ^ w[7];
    proto = h[6];
    l4 = off + 40;
    int toProxy = cfg.has6 && w[4] == cfg.proxy6[0] && w[5] == cfg.proxy6[1] && w[6] == cfg.proxy6[2] && w[7] == cfg.proxy6[3];
    if (proto != PROTO_TCP && proto != PROTO_UDP && proto != PROTO_ICMPV6 && proto != PROTO_IPV6 && proto != PROTO_IPIP) {
      fragment = 1; /* an extension header: addresses only */
    } else if (toProxy) {
      __u8 t[8];
      if ((proto == PROTO_TCP || proto == PROTO_UDP) && !bpf_skb_load_bytes(skb, l4, t, 4)) {
        *owned = owner(((__u32)t[2] << 8) | t[3]);
      } else if (proto == PROTO_ICMPV6 && !bpf_skb_load_bytes(skb, l4, t, 8)) {
        if (t[0] == 129) *owned = owner(((__u32)t[4] << 8) | t[5]);                    /* echo reply */
        else if (t[0] >= 1 && t[0] <= 4) *owned = quotedOwner(skb, l4, 1);
      }
    }
  } else {
    return 0;
  }
  if (!fragment && (proto == PROTO_IPIP || proto == PROTO_IPV6)) *inner = l4;
  __u32 ports = 0;
  if (!fragment && (proto == PROTO_TCP || proto == PROTO_UDP)) {
    __u8 t[4];
    if (!bpf_skb_load_bytes(skb, l4, t, 4)) ports = (((__u32)t[0] << 8) | t[1]) ^ (((__u32)t[2] << 8) | t[3]);
  } else if (!fragment && (proto == PROTO_ICMP || proto == PROTO_ICMPV6)) {
    __u8 t[8];
    if (!bpf_skb_load_bytes(skb, l4, t, 8) && (t[0] == 0 || t[0] == 8 || t[0] == 128 || t[0] == 129)) ports = ((__u32)t[4] << 8) | t[5];
  }
  return mix(a * 31 + ports * 17 + proto);
}

SEC("socket")
int steer(struct __sk_buff *skb) {
  int owned;
  __u32 inner, ignored;
  __u32 h = flowHash(skb, 0, &owned, &inner);
  if (owned >= 0) return owned;
  if (inner != 0 && inner < 128) {
    /* IP-in-IP: the inner packet decides, as if it had come in bare */
    h = flowHash(skb, inner, &owned, &ignored);
    if (owned >= 0) return owned;
  }
  return (int)(h & 0x7fffffff);
}

char LICENSE[] SEC("license") = "GPL";
