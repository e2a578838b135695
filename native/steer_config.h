// The workers' NAT port slices as pias's two steering programs take them:
// the TUN steering program (native/steer.bpf.c, in its .rodata, written from
// native/steering.h's SteerConfig) and the XDP program (native/xdp_kern.c,
// in its `steer` map, written from src/io/xdp.ts packSteer). Keep the three
// in step. Types only: no code.

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

#endif
