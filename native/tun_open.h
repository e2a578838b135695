// Opening a Linux TUN queue and negotiating what the kernel accepts: the
// virtio-net header (IFF_VNET_HDR + TUNSETVNETHDRSZ), offloads
// (TUNSETOFFLOAD: checksum, TSO4/6, USO4/6) and multi-queue
// (IFF_MULTI_QUEUE). Each refusal becomes one note (a line for the log) and
// the next simpler setting is tried, down to the plain path (IFF_TUN |
// IFF_NO_PI, no header): a refusal never fails the open.
//
// No N-API here: the caller turns the result into JS values or an exception.

#pragma once

#include <string>
#include <vector>

namespace pias {

// TUN_F_* offload bits (linux/if_tun.h; USO from Linux 6.2, absent from older headers).
constexpr unsigned kOffCsum = 0x01, kOffTso4 = 0x02, kOffTso6 = 0x04, kOffUso4 = 0x20, kOffUso6 = 0x40;
constexpr unsigned kOffAll = kOffCsum | kOffTso4 | kOffTso6 | kOffUso4 | kOffUso6;

// Bits of TunRequest::refuse: act as if the kernel refused (EINVAL) these
// steps. Only for tests of the fall-back paths; the offload bits are the
// TUN_F_* bits above.
constexpr unsigned kRefuseMultiQueue = 0x100, kRefuseVnetHdr = 0x4000, kRefuseUring = 0x10000, kRefuseSteering = 0x20000;

// Size of the virtio_net_hdr the device is set to (no num_buffers field).
constexpr int kVnetHdrLen = 10;

struct TunRequest {
  std::string name;      // "pias%d": the kernel numbers it
  bool vnetHdr = false;  // ask for IFF_VNET_HDR and these offloads
  unsigned offload = 0;  // TUN_F_* bits wanted (needs vnetHdr)
  bool multiQueue = false;
  unsigned refuse = 0;
};

struct TunOpened {
  int fd = -1;
  std::string name;          // as the kernel named it
  bool vnetHdr = false;      // reads and writes carry a kVnetHdrLen-byte virtio_net_hdr
  unsigned offload = 0;      // TUN_F_* bits the kernel accepted
  bool multiQueue = false;
  std::vector<std::string> notes;  // one line per refusal
  // On failure (fd < 0): errno and the message for the exception.
  int err = 0;
  std::string error;
};

TunOpened OpenTun(const TunRequest& req);

// "CSUM|TSO4|USO6" for a TUN_F_* mask ("none" for 0).
std::string OffloadNames(unsigned mask);

}  // namespace pias
