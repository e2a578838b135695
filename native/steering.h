// Loading the TUN steering program (native/steer.bpf.c, compiled at install)
// with libbpf and attaching it to a multi-queue TUN device
// (TUNSETSTEERINGEBPF). Built only with libbpf (PIAS_HAVE_BPF, set by
// binding.gyp when it is present); without it AttachSteering fails with a
// reason. Never throws; no N-API here.

#pragma once

#include <cstdint>
#include <string>

namespace pias {

// What the program steers by (the layout of steer.bpf.c's `cfg`).
struct SteerConfig {
  uint32_t proxy4;      // network order
  uint32_t proxy6[4];   // network order
  uint32_t has4;
  uint32_t has6;
  uint32_t portMin;     // the shared NAT range, host order
  uint32_t portMax;
  uint32_t slice;       // ports per worker
  uint32_t workers;
};

// Loads the program from `objPath`, sets `cfg` and attaches it to the device
// of TUN queue `fd`. False with *why when anything refuses.
bool AttachSteering(int fd, const std::string& objPath, const SteerConfig& cfg, std::string* why);

}  // namespace pias
