// Opening a TUN queue and negotiating header, offloads and multi-queue with
// the kernel (see tun_open.h). Never throws; every refusal is one note.

#include "tun_open.h"

#include <uv.h>

#include <cerrno>
#include <cstring>

#ifdef __linux__
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <unistd.h>
#endif

namespace pias {

namespace {

std::string ErrnoText(int err) { return std::string(strerror(err)) + " (" + uv_err_name(-err) + ")"; }

#ifdef __linux__

// The ioctl, or EINVAL when the test asked for this step to be refused.
int Ioctl(int fd, unsigned long req, unsigned long arg, bool refused) {
  if (refused) {
    errno = EINVAL;
    return -1;
  }
  return ::ioctl(fd, req, arg);
}

void Fail(TunOpened* out, const std::string& want, int err, const std::string& what) {
  out->err = err;
  if (err == EPERM || err == EACCES) {
    out->error = "opening a TUN device needs root (CAP_NET_ADMIN)";
    if (err == EACCES && what == "open") out->error += ": /dev/net/tun: " + ErrnoText(err);
  } else if (what == "open" && (err == ENOENT || err == ENODEV || err == ENXIO)) {
    out->error = "/dev/net/tun is missing (modprobe tun): " + ErrnoText(err);
  } else if (what == "open") {
    out->error = "cannot open /dev/net/tun: " + ErrnoText(err);
  } else {
    out->error = "cannot create TUN interface \"" + want + "\" (ioctl TUNSETIFF): " + ErrnoText(err);
  }
}

// One open + TUNSETIFF with `flags`; returns the fd or -1 with errno set.
// *atOpen tells whether open() or TUNSETIFF failed.
int OpenWith(const std::string& want, short flags, std::string* name, bool refuseMq, bool refuseVnet, bool* atOpen) {
  int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  *atOpen = fd < 0;
  if (fd < 0) return -1;
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = flags;
  std::memcpy(ifr.ifr_name, want.data(), want.size() < IFNAMSIZ ? want.size() : IFNAMSIZ - 1);
  bool refused = ((flags & IFF_MULTI_QUEUE) && refuseMq) || ((flags & IFF_VNET_HDR) && refuseVnet);
  if (Ioctl(fd, TUNSETIFF, reinterpret_cast<unsigned long>(&ifr), refused) < 0) {
    int err = errno;
    ::close(fd);
    errno = err;
    return -1;
  }
  name->assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  return fd;
}

// TUNSETOFFLOAD, from the mask asked for down to checksum only: the first
// the kernel takes. Returns the accepted mask (0: none).
unsigned NegotiateOffload(int fd, unsigned want, unsigned refuse, std::vector<std::string>* notes) {
  const unsigned ladder[] = {want, want & ~(kOffUso4 | kOffUso6), want & kOffCsum};
  unsigned last = 0;
  for (unsigned mask : ladder) {
    if (mask == 0 || mask == last) continue;
    last = mask;
    if (Ioctl(fd, TUNSETOFFLOAD, mask, (mask & refuse) != 0) == 0) return mask;
    notes->push_back("the kernel refused TUN offloads " + OffloadNames(mask) + " (TUNSETOFFLOAD: " + ErrnoText(errno) +
                     ")");
  }
  return 0;
}

#endif

}  // namespace

std::string OffloadNames(unsigned mask) {
  static const struct {
    unsigned bit;
    const char* name;
  } kNames[] = {{kOffCsum, "CSUM"}, {kOffTso4, "TSO4"}, {kOffTso6, "TSO6"}, {kOffUso4, "USO4"}, {kOffUso6, "USO6"}};
  std::string s;
  for (const auto& n : kNames) {
    if (!(mask & n.bit)) continue;
    if (!s.empty()) s += "|";
    s += n.name;
  }
  return s.empty() ? "none" : s;
}

TunOpened OpenTun(const TunRequest& req) {
  TunOpened out;
#ifdef __linux__
  bool vnet = req.vnetHdr;
  bool mq = req.multiQueue;
  for (;;) {
    short flags = IFF_TUN | IFF_NO_PI | (vnet ? IFF_VNET_HDR : 0) | (mq ? IFF_MULTI_QUEUE : 0);
    bool atOpen = false;
    int fd = OpenWith(req.name, flags, &out.name, req.refuse & kRefuseMultiQueue, req.refuse & kRefuseVnetHdr, &atOpen);
    if (fd < 0) {
      int err = errno;
      // EINVAL (or EOPNOTSUPP) from TUNSETIFF: a flag the kernel or the existing device does not take.
      bool flagRefused = !atOpen && (err == EINVAL || err == EOPNOTSUPP);
      if (flagRefused && mq) {
        out.notes.push_back("the kernel refused a multi-queue TUN device \"" + req.name + "\" (IFF_MULTI_QUEUE: " +
                            ErrnoText(err) + "); one queue");
        mq = false;
        continue;
      }
      if (flagRefused && vnet) {
        out.notes.push_back("the kernel refused the virtio-net header on TUN \"" + req.name + "\" (IFF_VNET_HDR: " +
                            ErrnoText(err) + "); plain path");
        vnet = false;
        continue;
      }
      Fail(&out, req.name, err, atOpen ? "open" : "TUNSETIFF");
      return out;
    }
    if (vnet) {
      int size = kVnetHdrLen;
      if (Ioctl(fd, TUNSETVNETHDRSZ, reinterpret_cast<unsigned long>(&size), false) < 0) {
        out.notes.push_back("the kernel refused a " + std::to_string(kVnetHdrLen) +
                            "-byte virtio-net header (TUNSETVNETHDRSZ: " + ErrnoText(errno) + "); plain path");
        ::close(fd);
        vnet = false;
        continue;
      }
      unsigned accepted = NegotiateOffload(fd, req.offload, req.refuse, &out.notes);
      if (accepted == 0) {
        // a header with nothing to say costs a copy per packet: reopen plain
        out.notes.push_back("no TUN offload accepted: plain path (no virtio-net header)");
        ::close(fd);
        vnet = false;
        continue;
      }
      out.offload = accepted;
    }
    out.fd = fd;
    out.vnetHdr = vnet;
    out.multiQueue = mq;
    return out;
  }
#else
  out.err = ENOSYS;
  out.error = "TUN devices are supported on Linux only";
  return out;
#endif
}

}  // namespace pias
