// The workers' NAT port slices as pias's two steering programs take them:
// the TUN steering program (native/steer.bpf.c, in its .rodata, written from
// native/steering.h's SteerConfig) and the XDP program (native/xdp_kern.c,
// in its `steer` map, written from src/io/xdp.ts packSteer). Keep the three
// in step. Beside the layout, the rule both programs steer by: which worker
// owns a NAT port.

#ifndef PIAS_STEER_CONFIG_H
#define PIAS_STEER_CONFIG_H

#include <linux/types.h>

struct steer_config {
  __u32 proxy4;     /* network order */
  __u32 proxy6[4];  /* network order */
  __u32 has4;
  __u32 has6;
  __u32 port_min;   /* the shared NAT range, host order */
  __u32 port_max;
  __u32 slice;      /* ports per worker (> 0) */
  __u32 workers;
};

#define PROTO_ICMP 1
#define PROTO_IPIP 4
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_IPV6 41
#define PROTO_ICMPV6 58

/* The worker owning NAT port `port` (host order), or -1 outside the range. */
static __always_inline int port_owner(const volatile struct steer_config *c, __u32 port) {
  if (port < c->port_min || port > c->port_max || c->slice == 0) return -1;
  __u32 w = (port - c->port_min) / c->slice;
  return w < c->workers ? (int)w : (int)c->workers - 1;
}

#endif
