// AF_XDP for the data plane, with the frames in the Wasm core's own linear
// memory: a page-aligned region of that memory is registered as the UMEM, so
// the kernel (or, in zero-copy mode, the NIC) writes frames where the core
// reads them, the core rewrites them in place, and they leave from there.
//
// One Xdp object owns: the XDP program (native/xdp_kern.c, attached through
// a bpf_link per interface, so the kernel detaches it when the last fd
// closes, also after SIGKILL; with workers, the XdpProgram below owns it),
// one AF_XDP socket per RX queue of each interface (all sharing the one
// UMEM, each with its own fill and completion ring), the frame pool, and the
// next-hop table (routes and neighbour MACs pushed from JS, from the
// kernel's tables).
//
// Per batch, one call each way: rx() reaps completions, tops up the fill
// rings and moves received frames into descriptors (OFF points into the
// UMEM: no copy); tx() sends what the core forwarded on the TX ring of the
// interface the route names, gives dropped frames straight back to a fill
// ring, and holds ToHost frames until the next rx() (the host reads them in
// between). Every frame is in exactly one state (free, fill, core, held,
// tx), checked on every transition; a frame the kernel hands back in a state
// it cannot be in is counted (frameErrors), never used.
//
// Workers (daemon.workers > 1 on AF_XDP): the main thread holds the
// program (an XdpProgram: loaded once, attached once per interface, with
// the workers' NAT port slices in its `steer` map); each worker's Xdp binds
// the sockets of its own queues (q % workers == its index), in a UMEM in
// its own core's memory, and puts them into the program's socket map (a
// file descriptor of this process: threads share them). The kernel only
// redirects a frame into a socket of the queue it arrived on, so a frame
// the program marks (XDP metadata) as another worker's is handed off: rx()
// copies it into that worker's ring in a SharedArrayBuffer (one
// single-producer single-consumer ring per ordered pair of workers; a full
// ring is a counted drop, handoffFull) and writes the owner's eventfd; the
// owner's rx() copies it into a free frame of its own UMEM and gives it to
// its core as if its own socket had received it: two copies of the frame's
// bytes, only for those frames (handoffOut / handoffIn).
//
// Never blocks, never allocates per packet, never touches memory outside the
// Uint8Array it is given: descriptors and packet bounds are checked, the
// memory's base address is compared with the registered one on every call
// (if it moved, AF_XDP is shut down before anything is read), and bad
// arguments throw TypeError/RangeError instead of crashing.
//
// Descriptor fields used (little-endian, per slot at desc + i * stride):
//   +0 u32 OFF, +4 u32 LEN, +8 u32 WIRELEN, +14 u16 IFACE (interface slot),
//   +28 u8 VERDICT (1 forward, 2 to host, else drop).

#include <napi.h>
#include <uv.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <xdp/xsk.h>
#include <linux/if_link.h>
#include <linux/if_xdp.h>
#include <net/if.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#ifndef SOL_XDP
#define SOL_XDP 283
#endif
#ifndef XDP_MAX_TX_SKB_BUDGET
#define XDP_MAX_TX_SKB_BUDGET 9  // Linux 6.17: frames one sendto() sends in copy mode (default 32)
#endif

namespace {

// Keep in step with native/xdp_kern.c.
constexpr uint32_t kMaxQueues = 64;
constexpr uint32_t kMaxIfaces = 16;
enum { kStatRedirected, kStatPassed, kStatNoSocket, kStatForeign, kStatNoMeta, kStatCount };
const char* const kStatNames[kStatCount] = {"programRedirected", "programPassed", "programNoSocket", "programForeign", "programNoMeta"};
constexpr uint32_t kMetaMagic = 0x616970f0;  // xdp_kern.c META_MAGIC, in front of the owner
constexpr size_t kSteerBytes = 44;           // xdp_kern.c struct steer_config
// Hand-off rings (SharedArrayBuffer): per ordered pair (from, to), a
// 128-byte head (producer index at +0, consumer index at +64), then `slots`
// slots of kHandSlot bytes: u32 length, u32 interface slot, the frame.
constexpr size_t kHandHead = 128, kHandSlot = 2048, kHandData = 8;

constexpr uint64_t kMaxU32 = 0xffffffffu;
constexpr uint64_t kDescBytes = 29;  // up to VERDICT at +28
constexpr size_t kOff = 0, kLen = 4, kWireLen = 8, kIface = 14, kVerdict = 28;
constexpr uint8_t kForward = 1, kToHost = 2;
constexpr size_t kRouteBytes = 36;  // family, length, interface, has gateway, prefix[16], gateway[16]
constexpr size_t kNeighBytes = 24;  // interface, family, address[16], mac[6]
constexpr size_t kAddrBytes = 18;   // interface or length, family, address[16] (served prefixes, misses)
constexpr size_t kMaxMisses = 16;
constexpr uint32_t kFrameReserve = 64;  // frames never lent to fill rings: host packets, TX

enum State : uint8_t { kFree, kFill, kCore, kHeld, kTx };

inline uint32_t LoadU32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
inline void StoreU32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
  p[2] = uint8_t(v >> 16);
  p[3] = uint8_t(v >> 24);
}
inline uint16_t LoadBe16(const uint8_t* p) { return uint16_t(p[0] << 8 | p[1]); }

// libbpf's last warning, for error messages (it would print to stderr).
char g_libbpf_message[512];
int LibbpfPrint(enum libbpf_print_level level, const char* fmt, va_list ap) {
  if (level == LIBBPF_DEBUG) return 0;
  vsnprintf(g_libbpf_message, sizeof g_libbpf_message, fmt, ap);
  size_t n = strlen(g_libbpf_message);
  while (n && (g_libbpf_message[n - 1] == '\n' || g_libbpf_message[n - 1] == ' ')) g_libbpf_message[--n] = 0;
  return 0;
}

std::string ErrText(int err) { return std::string(strerror(err)) + " (" + uv_err_name(-err) + ")"; }

void ThrowType(Napi::Env env, const std::string& msg) { Napi::TypeError::New(env, msg).ThrowAsJavaScriptException(); }
void ThrowRange(Napi::Env env, const std::string& msg) { Napi::RangeError::New(env, msg).ThrowAsJavaScriptException(); }
void ThrowCode(Napi::Env env, const char* code, const std::string& msg) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, code));
  e.ThrowAsJavaScriptException();
}

bool GetBytes(Napi::Value v, Napi::Env env, const char* what, uint8_t** data, size_t* len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(env, std::string(what) + " must be a Uint8Array");
    return false;
  }
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  *len = a.ElementLength();
  *data = *len ? a.Data() : nullptr;
  return true;
}

bool GetUint(Napi::Value v, Napi::Env env, const char* what, uint64_t max, uint64_t* out) {
  if (!v.IsNumber()) {
    ThrowType(env, std::string(what) + " must be a number");
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > double(max) || d != double(uint64_t(d))) {
    ThrowRange(env, std::string(what) + " must be an integer from 0 to " + std::to_string(max) + ", got " +
                        v.ToString().Utf8Value());
    return false;
  }
  *out = uint64_t(d);
  return true;
}

// RX queues of an interface: its /sys/class/net/<name>/queues/rx-N entries.
uint32_t RxQueues(const std::string& name) {
  DIR* d = opendir(("/sys/class/net/" + name + "/queues").c_str());
  if (d == nullptr) return 1;
  uint32_t n = 0;
  while (dirent* e = readdir(d)) n += strncmp(e->d_name, "rx-", 3) == 0;
  closedir(d);
  return n ? n : 1;
}

struct NeighKey {
  uint32_t iface;
  uint32_t family;
  uint8_t addr[16];
  bool operator==(const NeighKey& o) const { return iface == o.iface && family == o.family && !memcmp(addr, o.addr, 16); }
};
struct NeighHash {
  size_t operator()(const NeighKey& k) const {
    uint64_t h = 1469598103934665603ull ^ (uint64_t(k.iface) << 8 | k.family);
    for (uint8_t b : k.addr) h = (h ^ b) * 1099511628211ull;
    return size_t(h);
  }
};
struct Mac {
  uint8_t b[6];
};

struct RouteEntry {
  uint8_t family, length, iface, hasGateway;
  uint8_t prefix[16];
  uint8_t gateway[16];
};

bool PrefixMatch(const uint8_t* prefix, unsigned length, const uint8_t* addr) {
  unsigned whole = length / 8;
  if (memcmp(prefix, addr, whole)) return false;
  unsigned bits = length % 8;
  if (!bits) return true;
  uint8_t mask = uint8_t(0xff << (8 - bits));
  return (prefix[whole] & mask) == (addr[whole] & mask);
}

struct Socket {
  xsk_socket* xsk = nullptr;
  int fd = -1;
  uint32_t iface = 0, queue = 0;
  uint32_t slot = 0;  // its place among this object's sockets of its interface
  xsk_ring_cons rx{};
  xsk_ring_prod tx{};
  xsk_ring_prod fq{};
  xsk_ring_cons cq{};
  bool zerocopy = false;
  uint32_t fillTarget = 0;   // frames this socket's fill ring should hold
  uint32_t fillOwned = 0;    // lent through the fill ring, not back through RX yet
  uint32_t txOwned = 0;      // given to TX, not back through completion yet
  uint32_t fillPending = 0;  // reserved in the fill ring, not submitted yet
  uint32_t txPending = 0;
  uint64_t received = 0;
  uv_poll_t* poll = nullptr;
};

struct Iface {
  std::string name;
  uint32_t ifindex = 0;
  uint8_t mac[6] = {0};
  uint32_t queues = 0;
  uint32_t firstSocket = 0;
  uint32_t nsocks = 0;  // this object's sockets on it (all queues, or a worker's)
  int link = -1;
  const char* mode = "";
};

struct InFlight {
  uint32_t frame, socket;
};

struct Counters {
  uint64_t rx = 0, tx = 0, coreDropped = 0, toHost = 0, hostSent = 0, txInvalid = 0, rxInvalid = 0,
           rxNoHeadroom = 0, txRingFull = 0, txNotIp = 0, noRoute = 0, neighborUnresolved = 0, noFreeFrame = 0,
           frameErrors = 0, txWakeups = 0, txWakeupErrors = 0, fillWakeups = 0, completed = 0, txRetries = 0,
           handoffOut = 0, handoffIn = 0, handoffFull = 0, handoffWakeups = 0;
};

// The XDP program of native/xdp_kern.c and its maps: loaded once per
// process, attached to every interface through a bpf_link.
struct Program {
  bpf_object* obj = nullptr;
  int prog = -1, xsks = -1, slots = -1, served4 = -1, served6 = -1, stats = -1, steer = -1;

  bool Load(Napi::Env env, const std::string& path, const std::vector<Iface>& ifaces) {
    libbpf_set_print(LibbpfPrint);
    g_libbpf_message[0] = 0;
    obj = bpf_object__open_file(path.c_str(), nullptr);
    if (obj == nullptr) {
      int err = errno;
      ThrowCode(env, "EXDPPROG", "cannot open the XDP program " + path + ": " + ErrText(err));
      return false;
    }
    if (int rc = bpf_object__load(obj); rc != 0) {
      int err = -rc;
      if (err == EPERM || err == EACCES) {
        ThrowCode(env, "EPERM", "loading the XDP program needs root (CAP_BPF, CAP_NET_ADMIN)");
      } else {
        ThrowCode(env, "EXDPPROG", "the kernel refused the XDP program: " + ErrText(err) +
                                       (g_libbpf_message[0] ? std::string(": ") + g_libbpf_message : ""));
      }
      return false;
    }
    bpf_program* p = bpf_object__find_program_by_name(obj, "pias_xdp");
    xsks = bpf_object__find_map_fd_by_name(obj, "xsks");
    slots = bpf_object__find_map_fd_by_name(obj, "ifslots");
    served4 = bpf_object__find_map_fd_by_name(obj, "served4");
    served6 = bpf_object__find_map_fd_by_name(obj, "served6");
    stats = bpf_object__find_map_fd_by_name(obj, "stats");
    steer = bpf_object__find_map_fd_by_name(obj, "steer");
    if (p == nullptr || xsks < 0 || slots < 0 || served4 < 0 || served6 < 0 || stats < 0 || steer < 0) {
      ThrowCode(env, "EXDPPROG", path + " is not pias's XDP program (a program or map is missing)");
      return false;
    }
    prog = bpf_program__fd(p);
    for (uint32_t fi = 0; fi < ifaces.size(); fi++) {
      if (bpf_map_update_elem(slots, &ifaces[fi].ifindex, &fi, BPF_ANY) != 0) {
        ThrowCode(env, "EXDPPROG", "cannot fill the XDP program's interface map: " + ErrText(errno));
        return false;
      }
    }
    return true;
  }

  // The workers and their port slices (kSteerBytes, see xdp_kern.c struct steer_config)
  bool Steer(Napi::Env env, Napi::Value v) {
    uint8_t* p;
    size_t len;
    if (!GetBytes(v, env, "steer", &p, &len)) return false;
    if (len != kSteerBytes) return ThrowRange(env, "steer must be " + std::to_string(kSteerBytes) + " bytes"), false;
    uint32_t zero = 0;
    if (bpf_map_update_elem(steer, &zero, p, BPF_ANY) != 0) {
      ThrowCode(env, "EXDPPROG", "cannot fill the XDP program's worker map: " + ErrText(errno));
      return false;
    }
    return true;
  }

  bool Served(Napi::Env env, Napi::Value v) {
    uint8_t* p;
    size_t len;
    if (!GetBytes(v, env, "served", &p, &len)) return false;
    if (len % kAddrBytes) return ThrowRange(env, "served must hold 18-byte entries"), false;
    for (size_t i = 0; i < len; i += kAddrBytes) {
      unsigned family = p[i + 1], length = p[i];
      if ((family != 4 && family != 6) || length > (family == 4 ? 32u : 128u)) {
        return ThrowRange(env, "served entry " + std::to_string(i / kAddrBytes) + ": bad family or prefix length"), false;
      }
    }
    ClearLpm(served4, 4);
    ClearLpm(served6, 16);
    for (size_t i = 0; i < len; i += kAddrBytes) {
      uint8_t key[20] = {0};
      uint32_t length = p[i];
      memcpy(key, &length, 4);
      bool v4 = p[i + 1] == 4;
      memcpy(key + 4, p + i + 2, v4 ? 4 : 16);
      uint8_t one = 1;
      if (bpf_map_update_elem(v4 ? served4 : served6, key, &one, BPF_ANY) != 0) {
        ThrowCode(env, "EXDPPROG", "cannot fill the XDP program's prefix map: " + ErrText(errno));
        return false;
      }
    }
    return true;
  }

  static void ClearLpm(int fd, size_t addrBytes) {
    uint8_t key[20], next[20];
    size_t keyBytes = 4 + addrBytes;
    // deleting while walking restarts the walk: fetch the first key each time
    while (bpf_map_get_next_key(fd, nullptr, next) == 0) {
      memcpy(key, next, keyBytes);
      if (bpf_map_delete_elem(fd, key) != 0) break;
    }
  }

  bool Attach(Napi::Env env, std::vector<Iface>& ifaces, const std::string& mode) {
    for (Iface& f : ifaces) {
      const bool native = mode != "generic";
      LIBBPF_OPTS(bpf_link_create_opts, opts);
      opts.flags = native ? XDP_FLAGS_DRV_MODE : XDP_FLAGS_SKB_MODE;
      f.link = bpf_link_create(prog, int(f.ifindex), BPF_XDP, &opts);
      f.mode = native ? "native" : "generic";
      if (f.link < 0 && mode == "auto" && (errno == EOPNOTSUPP || errno == EINVAL)) {
        opts.flags = XDP_FLAGS_SKB_MODE;
        f.link = bpf_link_create(prog, int(f.ifindex), BPF_XDP, &opts);
        f.mode = "generic";
      }
      if (f.link < 0) {
        int err = errno;
        f.link = -1;
        if (err == EBUSY || err == EEXIST) {
          ThrowCode(env, "EXDPBUSY", f.name + " already has an XDP program attached (see ip link show " + f.name +
                                         "; remove it, e.g. ip link set dev " + f.name + " xdp off)");
        } else if (err == EOPNOTSUPP && mode == "native") {
          ThrowCode(env, "EXDPMODE", f.name + "'s driver has no native XDP: use daemon.xdpMode auto or generic");
        } else if (err == EPERM || err == EACCES) {
          ThrowCode(env, "EPERM", "attaching an XDP program needs root (CAP_NET_ADMIN)");
        } else {
          ThrowCode(env, "EXDPATTACH", "cannot attach the XDP program to " + f.name + " (" + f.mode + "): " + ErrText(err));
        }
        return false;
      }
    }
    return true;
  }

  // The kernel stops redirecting as soon as a link's fd closes.
  static void Detach(std::vector<Iface>& ifaces) {
    for (Iface& f : ifaces) {
      if (f.link >= 0) close(f.link);
      f.link = -1;
    }
  }

  void Close() {
    if (obj != nullptr) bpf_object__close(obj);
    obj = nullptr;
    prog = xsks = slots = served4 = served6 = stats = steer = -1;
  }

  void Stats(Napi::Object o) const {
    if (obj == nullptr) return;
    int cpus = libbpf_num_possible_cpus();
    if (cpus <= 0) return;
    std::vector<uint64_t> v(size_t(cpus), 0);
    for (uint32_t k = 0; k < kStatCount; k++) {
      uint64_t total = 0;
      if (bpf_map_lookup_elem(stats, &k, v.data()) == 0) for (uint64_t x : v) total += x;
      o.Set(kStatNames[k], double(total));
    }
  }

  uint32_t Id() const {
    bpf_prog_info pi = {};
    uint32_t pl = sizeof pi;
    return obj != nullptr && bpf_obj_get_info_by_fd(prog, &pi, &pl) == 0 ? pi.id : 0;
  }
};

uint32_t LinkId(int link) {
  bpf_link_info li = {};
  uint32_t l = sizeof li;
  return link >= 0 && bpf_obj_get_info_by_fd(link, &li, &l) == 0 ? li.id : 0;
}

// Interfaces from [{ name, mac? }] or [name]: index, RX queues.
bool ReadIfaces(Napi::Env env, Napi::Value v, bool macs, std::vector<Iface>* out) {
  if (!v.IsArray()) return ThrowType(env, "interfaces must be an array"), false;
  Napi::Array list = v.As<Napi::Array>();
  if (list.Length() == 0 || list.Length() > kMaxIfaces) {
    return ThrowRange(env, "from 1 to " + std::to_string(kMaxIfaces) + " interfaces"), false;
  }
  for (uint32_t i = 0; i < list.Length(); i++) {
    const std::string at = "interfaces[" + std::to_string(i) + "]";
    Iface f;
    Napi::Value name = list.Get(i);
    if (macs) {
      if (!list.Get(i).IsObject()) return ThrowType(env, at + " must be an object"), false;
      Napi::Object io = list.Get(i).As<Napi::Object>();
      name = io.Get("name");
      uint8_t* mac;
      size_t macLen;
      if (!GetBytes(io.Get("mac"), env, "mac", &mac, &macLen)) return false;
      if (macLen != 6) return ThrowRange(env, "the MAC of " + at + " must be 6 bytes"), false;
      memcpy(f.mac, mac, 6);
    }
    if (!name.IsString()) return ThrowType(env, at + (macs ? ".name" : "") + " must be a string"), false;
    f.name = name.As<Napi::String>().Utf8Value();
    if (f.name.empty() || f.name.size() >= IFNAMSIZ || (f.ifindex = if_nametoindex(f.name.c_str())) == 0) {
      return ThrowCode(env, "EXDPIFACE", "no interface " + f.name), false;
    }
    f.queues = RxQueues(f.name);
    if (f.queues > kMaxQueues) {
      return ThrowCode(env, "EXDPIFACE", f.name + " has " + std::to_string(f.queues) + " RX queues; at most " +
                                             std::to_string(kMaxQueues) + " are supported"), false;
    }
    out->push_back(f);
  }
  return true;
}

class Xdp : public Napi::ObjectWrap<Xdp> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Xdp",
                       {
                           InstanceMethod<&Xdp::Rx>("rx"),
                           InstanceMethod<&Xdp::Tx>("tx"),
                           InstanceMethod<&Xdp::SendFrame>("sendFrame"),
                           InstanceMethod<&Xdp::SetRoutes>("setRoutes"),
                           InstanceMethod<&Xdp::SetServed>("setServed"),
                           InstanceMethod<&Xdp::TakeMisses>("takeMisses"),
                           InstanceMethod<&Xdp::OnReadable>("onReadable"),
                           InstanceMethod<&Xdp::Pause>("pause"),
                           InstanceMethod<&Xdp::Close>("close"),
                           InstanceMethod<&Xdp::Stats>("stats"),
                           InstanceMethod<&Xdp::Frames>("frames"),
                           InstanceMethod<&Xdp::Info>("info"),
                           InstanceMethod<&Xdp::SetRefill>("setRefill"),
                           StaticMethod<&Xdp::MemoryAddress>("memoryAddress"),
                       });
  }

  // new Xdp({ memory, umemOffset, umemBytes, frameSize, headroom, ringSize,
  //           interfaces: [{ name, mac }], mode, program, served })
  explicit Xdp(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Xdp>(info) { Construct(info); }

  ~Xdp() override { Release(); }

  // Xdp.memoryAddress(view): where the view's bytes are (for tests: the UMEM stays put).
  static Napi::Value MemoryAddress(const Napi::CallbackInfo& info) {
    uint8_t* mem;
    size_t len;
    if (!GetBytes(info[0], info.Env(), "memory", &mem, &len)) return info.Env().Undefined();
    return Napi::Number::New(info.Env(), double(reinterpret_cast<uintptr_t>(mem)));
  }

 private:
  // ------------------------------------------------------------ setup

  // Throws (and leaves nothing open) when anything fails.
  void Construct(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) {
      ThrowType(env, "new Xdp needs an options object");
      return;
    }
    Napi::Object o = info[0].As<Napi::Object>();
    uint8_t* mem;
    size_t len;
    uint64_t off, bytes, frame, headroom, ring;
    if (!GetBytes(o.Get("memory"), env, "memory", &mem, &len) ||
        !GetUint(o.Get("umemOffset"), env, "umemOffset", kMaxU32, &off) ||
        !GetUint(o.Get("umemBytes"), env, "umemBytes", kMaxU32, &bytes) ||
        !GetUint(o.Get("frameSize"), env, "frameSize", 4096, &frame) ||
        !GetUint(o.Get("headroom"), env, "headroom", 1024, &headroom) ||
        !GetUint(o.Get("ringSize"), env, "ringSize", 1 << 16, &ring)) {
      return;
    }
    if (frame != 2048 && frame != 4096) return ThrowRange(env, "frameSize must be 2048 or 4096");
    if (ring < 64 || (ring & (ring - 1))) return ThrowRange(env, "ringSize must be a power of two, at least 64");
    if (off > len || bytes > len - off || bytes < frame) {
      return ThrowRange(env, "the UMEM [" + std::to_string(off) + ", +" + std::to_string(bytes) +
                                 ") lies outside the memory's " + std::to_string(len) + " bytes");
    }
    long page = sysconf(_SC_PAGESIZE);
    if ((reinterpret_cast<uintptr_t>(mem) + off) % uint64_t(page) || bytes % uint64_t(page)) {
      return ThrowRange(env, "the UMEM must start and end on a page boundary (" + std::to_string(page) + " bytes)");
    }
    Napi::Value worker = o.Get("worker");
    if (worker.IsUndefined() && !o.Get("program").IsString()) return ThrowType(env, "program must be the path of the XDP object file");
    std::string mode = o.Get("mode").IsString() ? o.Get("mode").As<Napi::String>().Utf8Value() : "auto";
    if (mode != "auto" && mode != "native" && mode != "generic") return ThrowRange(env, "mode must be auto, native or generic");
    base_ = reinterpret_cast<uintptr_t>(mem);
    umemOffset_ = uint32_t(off);
    umemBytes_ = uint32_t(bytes);
    frameSize_ = uint32_t(frame);
    headroom_ = uint32_t(headroom);
    frames_ = uint32_t(bytes / frame);
    if (!ReadIfaces(env, o.Get("interfaces"), true, &ifaces_)) return;
    if (!worker.IsUndefined() && !ReadWorker(env, worker)) return;
    if (worker.IsUndefined()) {
      if (!program_.Load(env, o.Get("program").As<Napi::String>().Utf8Value(), ifaces_) ||
          (!o.Get("served").IsUndefined() && !program_.Served(env, o.Get("served")))) {
        Release();
        return;
      }
      xsksMap_ = program_.xsks;
    }
    if (!Open(env, mode, uint32_t(ring))) {
      Release();
      return;
    }
    if (worker.IsUndefined() && !program_.Attach(env, ifaces_, mode)) Release();
  }

  // worker: { index, count, xsks (the program's socket map fd), handoff (Uint8Array over a
  //           SharedArrayBuffer), slots (per ring), wake: [eventfd per worker] }
  bool ReadWorker(Napi::Env env, Napi::Value v) {
    if (!v.IsObject()) return ThrowType(env, "worker must be an object"), false;
    Napi::Object w = v.As<Napi::Object>();
    uint64_t index, count, xsks, slots;
    if (!GetUint(w.Get("count"), env, "worker.count", kMaxQueues, &count) ||
        !GetUint(w.Get("index"), env, "worker.index", count ? count - 1 : 0, &index) ||
        !GetUint(w.Get("xsks"), env, "worker.xsks", 1 << 30, &xsks) ||
        !GetUint(w.Get("slots"), env, "worker.slots", 1 << 16, &slots)) {
      return false;
    }
    if (count < 1 || slots < 1 || (slots & (slots - 1))) return ThrowRange(env, "worker.count >= 1, worker.slots a power of two"), false;
    uint8_t* hand;
    size_t handLen;
    if (!GetBytes(w.Get("handoff"), env, "worker.handoff", &hand, &handLen)) return false;
    // the rings start at the first 64-byte boundary (a cache line: heads and tails apart)
    const size_t skip = (64 - reinterpret_cast<uintptr_t>(hand) % 64) % 64;
    if (handLen < skip + count * count * (kHandHead + slots * kHandSlot)) {
      return ThrowRange(env, "worker.handoff must hold count * count rings of `slots` slots, and 64 bytes more"), false;
    }
    hand += skip;
    if (!w.Get("wake").IsArray() || w.Get("wake").As<Napi::Array>().Length() != count) {
      return ThrowType(env, "worker.wake must be an array of one eventfd per worker"), false;
    }
    Napi::Array wake = w.Get("wake").As<Napi::Array>();
    for (uint32_t i = 0; i < count; i++) {
      uint64_t fd;
      if (!GetUint(wake.Get(i), env, "worker.wake[]", 1 << 30, &fd)) return false;
      wake_.push_back(int(fd));
    }
    for (const Iface& f : ifaces_) {
      if (f.queues < count) {
        return ThrowCode(env, "EXDPIFACE", f.name + " has " + std::to_string(f.queues) + " RX queues, fewer than " +
                                               std::to_string(count) + " workers"), false;
      }
    }
    worker_ = uint32_t(index);
    workers_ = uint32_t(count);
    xsksMap_ = int(xsks);
    hand_ = hand;
    handSlots_ = uint32_t(slots);
    handRef_ = Napi::Persistent(w.Get("handoff").As<Napi::Uint8Array>());
    handPending_.assign(count, 0);
    return true;
  }

  bool Open(Napi::Env env, const std::string& mode, uint32_t ring) {
    uint32_t sockets = 0;
    for (Iface& f : ifaces_) {
      f.firstSocket = sockets;
      f.nsocks = 0;
      for (uint32_t q = worker_; q < f.queues; q += workers_) f.nsocks++;
      sockets += f.nsocks;
    }
    socks_.resize(sockets);
    state_.assign(frames_, kFree);
    owner_.assign(frames_, 0);

    xsk_umem_config ucfg = {};
    ucfg.fill_size = ring;
    ucfg.comp_size = ring;
    ucfg.frame_size = frameSize_;
    ucfg.frame_headroom = 0;  // the kernel leaves XDP_PACKET_HEADROOM (256) in front of every frame anyway
    void* area = reinterpret_cast<void*>(base_ + umemOffset_);
    if (int rc = xsk_umem__create(&umem_, area, umemBytes_, &socks_[0].fq, &socks_[0].cq, &ucfg); rc != 0) {
      umem_ = nullptr;
      int err = -rc;
      std::string what = "registering " + std::to_string(umemBytes_) + " bytes of the core's memory as the UMEM: ";
      if (err == EPERM || err == EACCES) {
        ThrowCode(env, "EPERM", "opening AF_XDP sockets needs root (CAP_NET_RAW, CAP_NET_ADMIN)");
      } else if (err == EAFNOSUPPORT) {
        ThrowCode(env, "EXDPKERNEL", "this kernel has no AF_XDP (CONFIG_XDP_SOCKETS)");
      } else {
        ThrowCode(env, "EXDPUMEM", what + ErrText(err) + (err == ENOMEM ? " (RLIMIT_MEMLOCK?)" : ""));
      }
      return false;
    }
    // children the daemon spawns (ip, ping) must not get copies of pinned pages
    madvise(area, umemBytes_, MADV_DONTFORK);

    for (uint32_t fi = 0; fi < ifaces_.size(); fi++) {
      Iface& f = ifaces_[fi];
      for (uint32_t k = 0; k < f.nsocks; k++) {
        const uint32_t q = worker_ + k * workers_;
        uint32_t si = f.firstSocket + k;
        Socket& s = socks_[si];
        s.iface = fi;
        s.queue = q;
        s.slot = k;
        xsk_socket_config cfg = {};
        cfg.rx_size = ring;
        cfg.tx_size = ring;
        cfg.libxdp_flags = XSK_LIBXDP_FLAGS__INHIBIT_PROG_LOAD;  // ours is attached through a link
        cfg.bind_flags = XDP_USE_NEED_WAKEUP | (mode == "generic" ? XDP_COPY : 0);
        int rc = xsk_socket__create_shared(&s.xsk, f.name.c_str(), q, umem_, &s.rx, &s.tx, &s.fq, &s.cq, &cfg);
        if (rc != 0) {
          s.xsk = nullptr;
          int err = -rc;
          if (err == EPERM || err == EACCES) {
            ThrowCode(env, "EPERM", "opening AF_XDP sockets needs root (CAP_NET_RAW, CAP_NET_ADMIN)");
          } else {
            ThrowCode(env, "EXDPSOCKET", "binding an AF_XDP socket to " + f.name + " queue " + std::to_string(q) + ": " +
                                             ErrText(err) + (err == EBUSY ? " (another AF_XDP socket holds that queue)" : ""));
          }
          return false;
        }
        s.fd = xsk_socket__fd(s.xsk);
        // one sendto() per batch instead of one per 32 frames, where the kernel allows it
        uint32_t budget = ring;
        setsockopt(s.fd, SOL_XDP, XDP_MAX_TX_SKB_BUDGET, &budget, sizeof budget);
        xdp_options opts = {};
        socklen_t optlen = sizeof opts;
        if (getsockopt(s.fd, SOL_XDP, XDP_OPTIONS, &opts, &optlen) == 0) s.zerocopy = opts.flags & XDP_OPTIONS_ZEROCOPY;
        uint32_t key = fi * kMaxQueues + q;
        if (bpf_map_update_elem(xsksMap_, &key, &s.fd, BPF_ANY) != 0) {
          ThrowCode(env, "EXDPPROG", "cannot put the socket of " + f.name + " queue " + std::to_string(q) +
                                         " into the XDP program's map: " + ErrText(errno));
          return false;
        }
      }
    }

    // Lend frames to the fill rings, keeping a reserve for host packets. A
    // socket's RX ring (ring entries) can hold every frame it was lent, so
    // the kernel never has a frame it cannot hand back.
    if (frames_ < kFrameReserve + sockets) {
      ThrowRange(env, "the UMEM holds " + std::to_string(frames_) + " frames; " + std::to_string(sockets) +
                          " sockets need at least " + std::to_string(kFrameReserve + sockets));
      return false;
    }
    uint32_t per = (frames_ - kFrameReserve) / sockets;
    if (per > ring) per = ring;
    free_.reserve(frames_);
    for (uint32_t i = frames_; i-- > 0;) free_.push_back(i);
    for (Socket& s : socks_) s.fillTarget = per;
    TopUp();
    FlushFill();
    return true;
  }

  // ------------------------------------------------------------ frames

  bool Alive(Napi::Env env) {
    if (umem_ != nullptr) return true;
    ThrowCode(env, "EXDPCLOSED", closedWhy_.empty() ? "the AF_XDP backend is closed" : closedWhy_);
    return false;
  }

  // The memory must be the one registered, at the same address, and still
  // cover the UMEM; if it moved, shut AF_XDP down before anything else.
  bool CheckMemory(Napi::Env env, uint8_t* mem, size_t len) {
    if (reinterpret_cast<uintptr_t>(mem) == base_ && len >= size_t(umemOffset_) + umemBytes_) return true;
    char buf[256];
    snprintf(buf, sizeof buf,
             "the core's linear memory moved (from %#lx to %#lx, %zu bytes) after its UMEM was registered; "
             "AF_XDP stopped so the kernel no longer writes there",
             static_cast<unsigned long>(base_), static_cast<unsigned long>(reinterpret_cast<uintptr_t>(mem)), len);
    closedWhy_ = buf;
    Release();
    ThrowCode(env, "EXDPMOVED", closedWhy_);
    return false;
  }

  // Frame `f`, now in state `from`, leaves it; false (counted) if it was not there.
  bool Leave(uint32_t f, State from, uint32_t socket) {
    if (f >= frames_ || state_[f] != from || owner_[f] != socket) {
      counters_.frameErrors++;
      return false;
    }
    return true;
  }

  bool ToFill(uint32_t si, uint32_t f) {
    Socket& s = socks_[si];
    if (!refill_ || s.fillOwned >= s.fillTarget) return false;
    uint32_t idx;
    if (xsk_ring_prod__reserve(&s.fq, 1, &idx) != 1) return false;
    *xsk_ring_prod__fill_addr(&s.fq, idx) = uint64_t(f) * frameSize_;
    s.fillPending++;
    s.fillOwned++;
    state_[f] = kFill;
    owner_[f] = si;
    return true;
  }

  void ToFree(uint32_t f) {
    state_[f] = kFree;
    owner_[f] = 0;
    free_.push_back(f);
  }

  // A frame the core is done with: straight back to a fill ring, else free.
  void Recycle(uint32_t f, uint32_t si) {
    if (!ToFill(si, f)) ToFree(f);
  }

  void TopUp() {
    if (!refill_) return;
    for (uint32_t si = 0; si < socks_.size(); si++) {
      Socket& s = socks_[si];
      uint32_t want = s.fillTarget > s.fillOwned ? s.fillTarget - s.fillOwned : 0;
      if (want > free_.size()) want = uint32_t(free_.size());
      if (want == 0) continue;
      uint32_t room = xsk_prod_nb_free(&s.fq, want);  // may be more than asked
      if (room < want) want = room;
      uint32_t idx;
      if (want == 0 || xsk_ring_prod__reserve(&s.fq, want, &idx) != want) continue;
      for (uint32_t k = 0; k < want; k++) {
        uint32_t f = free_.back();
        free_.pop_back();
        *xsk_ring_prod__fill_addr(&s.fq, idx + k) = uint64_t(f) * frameSize_;
        state_[f] = kFill;
        owner_[f] = si;
      }
      s.fillPending += want;
      s.fillOwned += want;
    }
  }

  void FlushFill() {
    for (Socket& s : socks_) {
      if (s.fillPending == 0) continue;
      xsk_ring_prod__submit(&s.fq, s.fillPending);
      s.fillPending = 0;
      if (xsk_ring_prod__needs_wakeup(&s.fq)) {
        recvfrom(s.fd, nullptr, 0, MSG_DONTWAIT, nullptr, nullptr);
        counters_.fillWakeups++;
      }
    }
  }

  void Reap() {
    for (uint32_t si = 0; si < socks_.size(); si++) {
      Socket& s = socks_[si];
      uint32_t idx;
      uint32_t n = xsk_ring_cons__peek(&s.cq, s.cq.size, &idx);
      if (n == 0) continue;
      for (uint32_t k = 0; k < n; k++) {
        uint64_t addr = *xsk_ring_cons__comp_addr(&s.cq, idx + k);
        uint32_t f = uint32_t(addr / frameSize_);
        if (!Leave(f, kTx, si)) continue;
        s.txOwned--;
        Recycle(f, si);
      }
      xsk_ring_cons__release(&s.cq, n);
      counters_.completed += n;
    }
  }

  bool TxOutstanding(const Socket& s) const {
    return __atomic_load_n(s.tx.consumer, __ATOMIC_ACQUIRE) != *s.tx.producer;
  }

  // Hand the TX rings to the kernel. In copy mode the kernel sends from
  // sendto() in bounded batches, so kick until the ring is consumed (or the
  // device pushes back; the retry timer tries again).
  void FlushTx() {
    bool left = false;
    for (Socket& s : socks_) {
      if (s.txPending) {
        xsk_ring_prod__submit(&s.tx, s.txPending);
        s.txPending = 0;
      }
      for (uint32_t tries = 0; tries < s.tx.size / 16 + 4 && TxOutstanding(s); tries++) {
        if (!xsk_ring_prod__needs_wakeup(&s.tx)) break;
        counters_.txWakeups++;
        if (sendto(s.fd, nullptr, 0, MSG_DONTWAIT, nullptr, 0) < 0 && errno != EAGAIN && errno != EINTR) {
          if (errno != EBUSY && errno != ENOBUFS) counters_.txWakeupErrors++;
          break;
        }
      }
      left = left || (TxOutstanding(s) && xsk_ring_prod__needs_wakeup(&s.tx));
    }
    if (left && timer_ != nullptr && !timerArmed_) {
      timerArmed_ = true;
      uv_timer_start(timer_, OnTimer, 1, 0);
    }
  }

  static void OnTimer(uv_timer_t* t) {
    Xdp* self = static_cast<Xdp*>(t->data);
    if (self == nullptr) return;
    self->timerArmed_ = false;
    if (self->umem_ == nullptr) return;
    self->counters_.txRetries++;
    self->Reap();
    self->FlushTx();
    self->FlushFill();
  }

  // The next hop of a frame (Ethernet, maybe VLAN-tagged, IPv4 or IPv6): set
  // its MACs in place and pick the socket it leaves from.
  bool Route(uint8_t* p, uint32_t len, int from, uint32_t* out) {
    uint32_t at = 12;
    uint16_t type = LoadBe16(p + 12);
    for (int tags = 0; tags < 8 && (type == 0x8100 || type == 0x88a8 || type == 0x9100); tags++) {
      at += 4;
      if (at + 2 > len) break;
      type = LoadBe16(p + at);
    }
    at += 2;
    unsigned family;
    const uint8_t* dst;
    if (type == 0x0800 && at + 20 <= len) {
      family = 4;
      dst = p + at + 16;
    } else if (type == 0x86dd && at + 40 <= len) {
      family = 6;
      dst = p + at + 24;
    } else {
      counters_.txNotIp++;
      return false;
    }
    const unsigned alen = family == 4 ? 4 : 16;
    if (!(cacheValid_ && cacheFamily_ == family && !memcmp(cacheDst_, dst, alen))) {
      const RouteEntry* r = nullptr;
      for (const RouteEntry& c : routes_) {
        if (c.family == family && PrefixMatch(c.prefix, c.length, dst)) {
          r = &c;
          break;
        }
      }
      if (r == nullptr) {
        counters_.noRoute++;
        return false;
      }
      NeighKey k = {r->iface, family, {0}};
      memcpy(k.addr, r->hasGateway ? r->gateway : dst, alen);
      auto it = neighbors_.find(k);
      if (it == neighbors_.end()) {
        counters_.neighborUnresolved++;
        Miss(k);
        return false;
      }
      cacheValid_ = true;
      cacheFamily_ = family;
      memcpy(cacheDst_, dst, alen);
      cacheIface_ = r->iface;
      cacheMac_ = it->second;
    }
    const Iface& o = ifaces_[cacheIface_];
    memcpy(p, cacheMac_.b, 6);
    memcpy(p + 6, o.mac, 6);
    *out = o.firstSocket + (from >= 0 ? socks_[from].slot % o.nsocks : 0);
    return true;
  }

  void Miss(const NeighKey& k) {
    for (size_t i = 0; i < misses_.size(); i++) if (misses_[i] == k) return;
    if (misses_.size() < kMaxMisses) misses_.push_back(k);
  }

  bool ToTx(uint32_t si, uint32_t f, uint64_t addr, uint32_t len) {
    Socket& s = socks_[si];
    uint32_t idx;
    if (xsk_ring_prod__reserve(&s.tx, 1, &idx) != 1) return false;
    xdp_desc* d = xsk_ring_prod__tx_desc(&s.tx, idx);
    d->addr = addr;
    d->len = len;
    d->options = 0;
    s.txPending++;
    s.txOwned++;
    state_[f] = kTx;
    owner_[f] = si;
    return true;
  }

  static void Describe(uint8_t* o, uint32_t off, uint32_t len, uint32_t iface) {
    StoreU32(o + kOff, off);
    StoreU32(o + kLen, len);
    StoreU32(o + kWireLen, len);
    o[kIface] = uint8_t(iface);
    o[kIface + 1] = 0;
  }

  // ------------------------------------------------------------ hand-off

  uint8_t* HandRing(uint32_t from, uint32_t to) const {
    return hand_ + size_t(from * workers_ + to) * (kHandHead + size_t(handSlots_) * kHandSlot);
  }
  static uint32_t* HeadOf(uint8_t* r) { return reinterpret_cast<uint32_t*>(r); }
  static uint32_t* TailOf(uint8_t* r) { return reinterpret_cast<uint32_t*>(r + 64); }

  // The worker owning a received frame: the program's metadata in front of it, else this one.
  uint32_t OwnerOf(const uint8_t* packet) const {
    uint32_t magic, owner;
    memcpy(&magic, packet - 8, 4);
    memcpy(&owner, packet - 4, 4);
    return magic == kMetaMagic && owner < workers_ ? owner : worker_;
  }

  // Copy a frame into the ring from this worker to `to` (published by PublishHandoffs); a full ring drops it, counted.
  void HandOff(uint32_t to, const uint8_t* p, uint32_t len, uint32_t iface) {
    uint8_t* r = HandRing(worker_, to);
    uint32_t head = __atomic_load_n(HeadOf(r), __ATOMIC_RELAXED) + handPending_[to];
    uint32_t tail = __atomic_load_n(TailOf(r), __ATOMIC_ACQUIRE);
    if (head - tail >= handSlots_ || len > kHandSlot - kHandData) {
      counters_.handoffFull++;
      return;
    }
    uint8_t* slot = r + kHandHead + size_t(head & (handSlots_ - 1)) * kHandSlot;
    StoreU32(slot, len);
    StoreU32(slot + 4, iface);
    memcpy(slot + kHandData, p, len);
    handPending_[to]++;
    counters_.handoffOut++;
  }

  // Make this batch's hand-offs visible to their owners and wake each owner once.
  void PublishHandoffs() {
    for (uint32_t to = 0; to < workers_; to++) {
      if (handPending_[to] == 0) continue;
      uint32_t* head = HeadOf(HandRing(worker_, to));
      __atomic_store_n(head, __atomic_load_n(head, __ATOMIC_RELAXED) + handPending_[to], __ATOMIC_RELEASE);
      handPending_[to] = 0;
      Wake(to);
    }
  }

  void Wake(uint32_t w) {
    uint64_t one = 1;
    if (write(wake_[w], &one, sizeof one) == sizeof one) counters_.handoffWakeups++;
  }

  // Frames other workers handed to this one, into descriptors [got, max): each
  // copied into a free frame of this UMEM, as if this worker's socket on its
  // interface had received it. Returns the new count.
  uint32_t TakeHandoffs(uint8_t* mem, uint64_t desc, uint64_t stride, uint32_t got, uint32_t max) {
    bool left = false;
    for (uint32_t k = 1; k < workers_; k++) {
      uint8_t* r = HandRing((worker_ + k) % workers_, worker_);
      uint32_t tail = __atomic_load_n(TailOf(r), __ATOMIC_RELAXED);
      const uint32_t head = __atomic_load_n(HeadOf(r), __ATOMIC_ACQUIRE);
      uint32_t at = tail;
      for (; at != head && got < max && !free_.empty(); at++) {
        const uint8_t* slot = r + kHandHead + size_t(at & (handSlots_ - 1)) * kHandSlot;
        uint32_t len = LoadU32(slot), iface = LoadU32(slot + 4);
        if (len == 0 || len > frameSize_ - 256 || iface >= ifaces_.size() || ifaces_[iface].nsocks == 0) {
          counters_.rxInvalid++;
          continue;
        }
        uint32_t f = free_.back();
        free_.pop_back();
        uint64_t addr = uint64_t(f) * frameSize_ + 256;  // where the kernel would have put it
        memcpy(mem + umemOffset_ + addr, slot + kHandData, len);
        uint32_t si = ifaces_[iface].firstSocket;
        state_[f] = kCore;
        owner_[f] = si;
        Describe(mem + desc + uint64_t(got) * stride, umemOffset_ + uint32_t(addr), len, iface);
        inflight_.push_back({f, si});
        got++;
        counters_.handoffIn++;
      }
      if (at != tail) __atomic_store_n(TailOf(r), at, __ATOMIC_RELEASE);
      left = left || at != head;
    }
    // no free frame for some: come back once this batch's frames are recycled
    if (left && got < max) Wake(worker_);
    return got;
  }

  // ------------------------------------------------------------ batch calls

  // rx(mem, desc, stride, max) -> frames received into descriptors [0, n)
  Napi::Value Rx(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint8_t* mem;
    size_t len;
    uint64_t desc, stride, max;
    if (!Alive(env) || !GetBytes(info[0], env, "mem", &mem, &len) || !GetUint(info[1], env, "desc", kMaxU32, &desc) ||
        !GetUint(info[2], env, "stride", kMaxU32, &stride) || !GetUint(info[3], env, "max", 1 << 16, &max) ||
        !CheckMemory(env, mem, len)) {
      return env.Undefined();
    }
    if (stride < kDescBytes) return ThrowRange(env, "stride must be at least 29"), env.Undefined();
    if (max && (desc > len || max > (len - desc) / stride)) {
      return ThrowRange(env, "descriptors run past the memory's " + std::to_string(len) + " bytes"), env.Undefined();
    }
    // frames of the last batch that tx() never saw, and those the host held
    for (const InFlight& x : inflight_) Recycle(x.frame, x.socket);
    inflight_.clear();
    for (const InFlight& x : held_) {
      if (Leave(x.frame, kHeld, x.socket)) Recycle(x.frame, x.socket);
    }
    held_.clear();
    Reap();

    // frames other workers handed here first (up to half the batch), then our queues, then more hand-offs
    uint32_t got = TakeHandoffs(mem, desc, stride, 0, uint32_t(max / 2));
    const uint32_t n = uint32_t(socks_.size());
    for (uint32_t k = 0; k < n && got < max; k++) {
      uint32_t si = (rr_ + k) % n;
      Socket& s = socks_[si];
      uint32_t idx;
      uint32_t avail = xsk_ring_cons__peek(&s.rx, uint32_t(max) - got, &idx);
      for (uint32_t j = 0; j < avail; j++) {
        const xdp_desc* d = xsk_ring_cons__rx_desc(&s.rx, idx + j);
        uint32_t f = uint32_t(d->addr / frameSize_);
        if (!Leave(f, kFill, si)) continue;
        s.fillOwned--;
        uint32_t at = uint32_t(d->addr % frameSize_);
        if (d->len == 0 || at + uint64_t(d->len) > frameSize_) {
          counters_.rxInvalid++;
          Recycle(f, si);
          continue;
        }
        if (at < headroom_) {  // the core writes tunnel headers in front of the packet
          counters_.rxNoHeadroom++;
          Recycle(f, si);
          continue;
        }
        if (workers_ > 1) {  // the program's metadata names the worker owning the frame
          const uint8_t* packet = mem + umemOffset_ + d->addr;
          uint32_t to = OwnerOf(packet);
          if (to != worker_) {
            HandOff(to, packet, d->len, s.iface);
            Recycle(f, si);
            continue;
          }
        }
        state_[f] = kCore;
        owner_[f] = si;
        Describe(mem + desc + uint64_t(got) * stride, umemOffset_ + uint32_t(d->addr), d->len, s.iface);
        inflight_.push_back({f, si});
        got++;
      }
      xsk_ring_cons__release(&s.rx, avail);
      s.received += avail;
    }
    rr_ = (rr_ + 1) % n;
    if (workers_ > 1) {
      PublishHandoffs();
      got = TakeHandoffs(mem, desc, stride, got, uint32_t(max));
    }
    counters_.rx += got;
    // the frames now in the core were lent through the fill rings: lend as many again
    TopUp();
    FlushFill();
    return Napi::Number::New(env, got);
  }

  // tx(mem, desc, stride, n) -> frames sent; n: the count rx() returned
  Napi::Value Tx(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint8_t* mem;
    size_t len;
    uint64_t desc, stride, n;
    if (!Alive(env) || !GetBytes(info[0], env, "mem", &mem, &len) || !GetUint(info[1], env, "desc", kMaxU32, &desc) ||
        !GetUint(info[2], env, "stride", kMaxU32, &stride) || !GetUint(info[3], env, "n", 1 << 16, &n) ||
        !CheckMemory(env, mem, len)) {
      return env.Undefined();
    }
    if (stride < kDescBytes) return ThrowRange(env, "stride must be at least 29"), env.Undefined();
    if (n > inflight_.size()) {
      return ThrowRange(env, "n is " + std::to_string(n) + " but the last rx() returned " + std::to_string(inflight_.size())),
             env.Undefined();
    }
    if (n && (desc > len || n > (len - desc) / stride)) {
      return ThrowRange(env, "descriptors run past the memory's " + std::to_string(len) + " bytes"), env.Undefined();
    }
    uint32_t sent = 0;
    for (uint32_t i = 0; i < inflight_.size(); i++) {
      const InFlight x = inflight_[i];
      if (i >= n) {
        Recycle(x.frame, x.socket);
        continue;
      }
      const uint8_t* d = mem + desc + uint64_t(i) * stride;
      uint8_t verdict = d[kVerdict];
      if (verdict == kToHost) {
        state_[x.frame] = kHeld;
        held_.push_back(x);
        counters_.toHost++;
        continue;
      }
      if (verdict != kForward) {
        counters_.coreDropped++;
        Recycle(x.frame, x.socket);
        continue;
      }
      // the core may have moved the packet within its frame (a tunnel
      // header in front), never out of it
      uint64_t off = LoadU32(d + kOff), plen = LoadU32(d + kLen);
      uint64_t start = uint64_t(umemOffset_) + uint64_t(x.frame) * frameSize_;
      uint32_t out;
      if (off < start || plen < 14 || off + plen > start + frameSize_) {
        counters_.txInvalid++;
        Recycle(x.frame, x.socket);
      } else if (!Route(mem + off, uint32_t(plen), int(x.socket), &out)) {
        Recycle(x.frame, x.socket);
      } else if (!ToTx(out, x.frame, off - umemOffset_, uint32_t(plen))) {
        counters_.txRingFull++;
        Recycle(x.frame, x.socket);
      } else {
        sent++;
      }
    }
    inflight_.clear();
    counters_.tx += sent;
    FlushTx();
    FlushFill();
    return Napi::Number::New(env, sent);
  }

  // sendFrame(mem, bytes) -> true if queued: a frame the host built, copied into a free frame
  Napi::Value SendFrame(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint8_t *mem, *p;
    size_t memLen, len;
    if (!Alive(env) || !GetBytes(info[0], env, "mem", &mem, &memLen) || !CheckMemory(env, mem, memLen) ||
        !GetBytes(info[1], env, "frame", &p, &len)) {
      return env.Undefined();
    }
    if (len < 14 || len > frameSize_ - 256) {
      ThrowRange(env, "a frame must be 14 to " + std::to_string(frameSize_ - 256) + " bytes, got " + std::to_string(len));
      return env.Undefined();
    }
    Reap();
    if (free_.empty()) {
      counters_.noFreeFrame++;
      return Napi::Boolean::New(env, false);
    }
    uint32_t f = free_.back();
    uint64_t addr = uint64_t(f) * frameSize_ + 256;
    uint8_t* frame = mem + umemOffset_ + addr;
    memmove(frame, p, len);
    uint32_t out;
    if (!Route(frame, uint32_t(len), -1, &out)) return Napi::Boolean::New(env, false);
    free_.pop_back();
    state_[f] = kCore;  // ToTx takes it from here
    if (!ToTx(out, f, addr, uint32_t(len))) {
      counters_.txRingFull++;
      ToFree(f);
      return Napi::Boolean::New(env, false);
    }
    counters_.hostSent++;
    FlushTx();
    return Napi::Boolean::New(env, true);
  }

  // ------------------------------------------------------------ tables

  // setRoutes(routes, neighbors): the next-hop table, from the kernel's
  Napi::Value SetRoutes(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint8_t *r, *nb;
    size_t rlen, nlen;
    if (!GetBytes(info[0], env, "routes", &r, &rlen) || !GetBytes(info[1], env, "neighbors", &nb, &nlen)) {
      return env.Undefined();
    }
    if (rlen % kRouteBytes || nlen % kNeighBytes) {
      ThrowRange(env, "routes are 36-byte entries, neighbours 24-byte entries");
      return env.Undefined();
    }
    std::vector<RouteEntry> routes;
    for (size_t i = 0; i < rlen; i += kRouteBytes) {
      RouteEntry x;
      memcpy(&x, r + i, sizeof x);
      if ((x.family != 4 && x.family != 6) || x.length > (x.family == 4 ? 32 : 128) || x.iface >= ifaces_.size()) {
        ThrowRange(env, "route " + std::to_string(i / kRouteBytes) + ": bad family, prefix length or interface");
        return env.Undefined();
      }
      routes.push_back(x);
    }
    std::unordered_map<NeighKey, Mac, NeighHash> neighbors;
    for (size_t i = 0; i < nlen; i += kNeighBytes) {
      const uint8_t* e = nb + i;
      if (e[0] >= ifaces_.size() || (e[1] != 4 && e[1] != 6)) {
        ThrowRange(env, "neighbour " + std::to_string(i / kNeighBytes) + ": bad interface or family");
        return env.Undefined();
      }
      NeighKey k = {e[0], e[1], {0}};
      memcpy(k.addr, e + 2, 16);
      Mac m;
      memcpy(m.b, e + 18, 6);
      neighbors[k] = m;
    }
    // longest prefix first
    std::stable_sort(routes.begin(), routes.end(), [](const RouteEntry& a, const RouteEntry& b) { return a.length > b.length; });
    routes_.swap(routes);
    neighbors_.swap(neighbors);
    cacheValid_ = false;
    return env.Undefined();
  }

  // setServed(entries): the prefixes the XDP program redirects (length, family, address[16] each)
  Napi::Value SetServed(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    if (program_.obj == nullptr) {
      ThrowCode(env, "EXDPWORKER", "a worker's sockets have no program of their own: set what is served on the XdpProgram");
      return env.Undefined();
    }
    program_.Served(env, info[0]);
    return env.Undefined();
  }

  // takeMisses() -> Uint8Array of (interface, family, address[16]): next hops with no MAC yet
  Napi::Value TakeMisses(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Uint8Array out = Napi::Uint8Array::New(env, misses_.size() * kAddrBytes);
    for (size_t i = 0; i < misses_.size(); i++) {
      out[i * kAddrBytes] = uint8_t(misses_[i].iface);
      out[i * kAddrBytes + 1] = uint8_t(misses_[i].family);
      memcpy(out.Data() + i * kAddrBytes + 2, misses_[i].addr, 16);
    }
    misses_.clear();
    return out;
  }

  // setRefill(on): whether frames go back to the fill rings (tests: count what the kernel holds)
  Napi::Value SetRefill(const Napi::CallbackInfo& info) {
    refill_ = info[0].ToBoolean();
    if (refill_ && umem_ != nullptr) {
      TopUp();
      FlushFill();
    }
    return info.Env().Undefined();
  }

  // ------------------------------------------------------------ readiness

  Napi::Value OnReadable(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    if (!info[0].IsFunction()) {
      ThrowType(env, "onReadable needs a function");
      return env.Undefined();
    }
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
      Napi::Error::New(env, "cannot get the event loop").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    if (timer_ == nullptr) {
      timer_ = new uv_timer_t;
      uv_timer_init(loop, timer_);
      timer_->data = this;
      uv_unref(reinterpret_cast<uv_handle_t*>(timer_));
    }
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    if (watching_) return env.Undefined();
    for (Socket& s : socks_) {
      if (s.poll == nullptr) {
        s.poll = new uv_poll_t;
        if (int rc = uv_poll_init(loop, s.poll, s.fd); rc != 0) {
          delete s.poll;
          s.poll = nullptr;
          ThrowCode(env, "EXDPSOCKET", std::string("cannot watch an AF_XDP socket: ") + uv_strerror(rc));
          return env.Undefined();
        }
        s.poll->data = this;
      }
      uv_poll_start(s.poll, UV_READABLE, OnPoll);
    }
    if (workers_ > 1) {  // hand-offs from the other workers
      if (wakePoll_ == nullptr) {
        wakePoll_ = new uv_poll_t;
        if (int rc = uv_poll_init(loop, wakePoll_, wake_[worker_]); rc != 0) {
          delete wakePoll_;
          wakePoll_ = nullptr;
          ThrowCode(env, "EXDPSOCKET", std::string("cannot watch the hand-off eventfd: ") + uv_strerror(rc));
          return env.Undefined();
        }
        wakePoll_->data = this;
      }
      uv_poll_start(wakePoll_, UV_READABLE, OnWake);
    }
    napi_async_init(env, Value(), Napi::String::New(env, "PiasXdpReadable"), &async_);
    Ref();
    watching_ = true;
    return env.Undefined();
  }

  static void OnPoll(uv_poll_t* handle, int /*status*/, int /*events*/) {
    Xdp* self = static_cast<Xdp*>(handle->data);
    if (self == nullptr || !self->watching_) return;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    self->callback_.MakeCallback(self->Value(), {}, self->async_);
    if (env.IsExceptionPending()) {
      Napi::Error err = env.GetAndClearPendingException();
      napi_fatal_exception(env, err.Value());
    }
  }

  static void OnWake(uv_poll_t* handle, int status, int events) {
    Xdp* self = static_cast<Xdp*>(handle->data);
    if (self == nullptr) return;
    uint64_t n;
    if (read(self->wake_[self->worker_], &n, sizeof n) < 0) {}  // reset the eventfd; EAGAIN: already read
    OnPoll(handle, status, events);
  }

  void StopWatching() {
    if (!watching_) return;
    for (Socket& s : socks_) if (s.poll) uv_poll_stop(s.poll);
    if (wakePoll_) uv_poll_stop(wakePoll_);
    watching_ = false;
    callback_.Reset();
    if (async_ != nullptr) {
      napi_async_destroy(Env(), async_);
      async_ = nullptr;
    }
    Unref();
  }

  Napi::Value Pause(const Napi::CallbackInfo& info) {
    StopWatching();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  // Detach the program first (the kernel stops redirecting), then the
  // sockets, the UMEM (its pages are unpinned) and the program.
  void Release() {
    StopWatching();
    Program::Detach(ifaces_);
    if (wakePoll_ != nullptr) {
      wakePoll_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(wakePoll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      wakePoll_ = nullptr;
    }
    for (Socket& s : socks_) {
      if (s.poll != nullptr) {
        s.poll->data = nullptr;
        uv_close(reinterpret_cast<uv_handle_t*>(s.poll), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
        s.poll = nullptr;
      }
      if (s.xsk != nullptr) xsk_socket__delete(s.xsk);
      s.xsk = nullptr;
      s.fd = -1;
    }
    if (timer_ != nullptr) {
      timer_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(timer_), [](uv_handle_t* h) { delete reinterpret_cast<uv_timer_t*>(h); });
      timer_ = nullptr;
    }
    if (umem_ != nullptr) {
      madvise(reinterpret_cast<void*>(base_ + umemOffset_), umemBytes_, MADV_DOFORK);
      xsk_umem__delete(umem_);
      umem_ = nullptr;
    }
    program_.Close();
    hand_ = nullptr;
    handRef_.Reset();
  }

  // ------------------------------------------------------------ reports

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    const Counters& c = counters_;
    o.Set("rx", double(c.rx));
    o.Set("tx", double(c.tx));
    o.Set("coreDropped", double(c.coreDropped));
    o.Set("toHost", double(c.toHost));
    o.Set("hostSent", double(c.hostSent));
    o.Set("txInvalid", double(c.txInvalid));
    o.Set("rxInvalid", double(c.rxInvalid));
    o.Set("rxNoHeadroom", double(c.rxNoHeadroom));
    o.Set("txRingFull", double(c.txRingFull));
    o.Set("txNotIp", double(c.txNotIp));
    o.Set("noRoute", double(c.noRoute));
    o.Set("neighborUnresolved", double(c.neighborUnresolved));
    o.Set("noFreeFrame", double(c.noFreeFrame));
    o.Set("frameErrors", double(c.frameErrors));
    o.Set("txWakeups", double(c.txWakeups));
    o.Set("txWakeupErrors", double(c.txWakeupErrors));
    o.Set("txRetries", double(c.txRetries));
    o.Set("fillWakeups", double(c.fillWakeups));
    o.Set("completed", double(c.completed));
    xdp_statistics sum = {};
    for (const Socket& s : socks_) {
      xdp_statistics st = {};
      socklen_t l = sizeof st;
      if (s.fd >= 0 && getsockopt(s.fd, SOL_XDP, XDP_STATISTICS, &st, &l) == 0) {
        sum.rx_dropped += st.rx_dropped;
        sum.rx_invalid_descs += st.rx_invalid_descs;
        sum.tx_invalid_descs += st.tx_invalid_descs;
        sum.rx_ring_full += st.rx_ring_full;
        sum.rx_fill_ring_empty_descs += st.rx_fill_ring_empty_descs;
        sum.tx_ring_empty_descs += st.tx_ring_empty_descs;
      }
    }
    o.Set("kernelRxDropped", double(sum.rx_dropped));
    o.Set("kernelRxInvalid", double(sum.rx_invalid_descs));
    o.Set("kernelTxInvalid", double(sum.tx_invalid_descs));
    o.Set("kernelRxRingFull", double(sum.rx_ring_full));
    o.Set("kernelFillEmpty", double(sum.rx_fill_ring_empty_descs));
    o.Set("handoffOut", double(c.handoffOut));
    o.Set("handoffIn", double(c.handoffIn));
    o.Set("handoffFull", double(c.handoffFull));
    o.Set("handoffWakeups", double(c.handoffWakeups));
    program_.Stats(o);
    return o;
  }

  // frames() -> where every UMEM frame is now; the parts add up to total
  Napi::Value Frames(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint64_t count[5] = {0};
    for (uint8_t s : state_) count[s]++;
    uint64_t rxReady = 0, compReady = 0;
    for (const Socket& s : socks_) {
      if (s.xsk == nullptr) continue;
      rxReady += uint32_t(__atomic_load_n(s.rx.producer, __ATOMIC_ACQUIRE) - *s.rx.consumer);
      compReady += uint32_t(__atomic_load_n(s.cq.producer, __ATOMIC_ACQUIRE) - *s.cq.consumer);
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("total", double(frames_));
    o.Set("free", double(count[kFree]));
    o.Set("fill", double(count[kFill] - rxReady));
    o.Set("rx", double(rxReady));
    o.Set("core", double(count[kCore]));
    o.Set("held", double(count[kHeld]));
    o.Set("tx", double(count[kTx] - compReady));
    o.Set("completion", double(compReady));
    o.Set("errors", double(counters_.frameErrors));
    return o;
  }

  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    Napi::Array list = Napi::Array::New(env, ifaces_.size());
    for (uint32_t i = 0; i < ifaces_.size(); i++) {
      const Iface& f = ifaces_[i];
      Napi::Object x = Napi::Object::New(env);
      x.Set("name", f.name);
      x.Set("ifindex", double(f.ifindex));
      x.Set("queues", double(f.queues));
      x.Set("mode", f.mode);
      bool zc = f.queues > 0;
      for (uint32_t k = 0; k < f.nsocks && f.firstSocket + k < socks_.size(); k++) zc = zc && socks_[f.firstSocket + k].zerocopy;
      x.Set("zerocopy", zc);
      x.Set("linkId", double(LinkId(f.link)));
      list[i] = x;
    }
    o.Set("interfaces", list);
    Napi::Array sockets = Napi::Array::New(env, socks_.size());
    for (uint32_t i = 0; i < socks_.size(); i++) {
      Napi::Object x = Napi::Object::New(env);
      x.Set("interface", ifaces_[socks_[i].iface].name);
      x.Set("queue", double(socks_[i].queue));
      x.Set("zerocopy", socks_[i].zerocopy);
      x.Set("received", double(socks_[i].received));
      x.Set("lent", double(socks_[i].fillOwned));
      sockets[i] = x;
    }
    o.Set("sockets", sockets);
    o.Set("programId", double(program_.Id()));
    o.Set("worker", double(worker_));
    o.Set("workers", double(workers_));
    o.Set("umemAddress", double(base_ + umemOffset_));
    o.Set("umemOffset", double(umemOffset_));
    o.Set("umemBytes", double(umemBytes_));
    o.Set("frameSize", double(frameSize_));
    o.Set("frames", double(frames_));
    o.Set("open", umem_ != nullptr);
    return o;
  }

  uintptr_t base_ = 0;
  uint32_t umemOffset_ = 0, umemBytes_ = 0, frameSize_ = 2048, headroom_ = 128, frames_ = 0;
  Program program_;  // loaded here with one worker; the pool's XdpProgram holds it with several
  int xsksMap_ = -1;
  uint32_t worker_ = 0, workers_ = 1;
  uint8_t* hand_ = nullptr;  // the hand-off rings (worker_ > 0 or workers_ > 1)
  uint32_t handSlots_ = 0;
  std::vector<uint32_t> handPending_;  // frames put in ring (worker_, to) this batch, not published yet
  std::vector<int> wake_;
  Napi::Reference<Napi::Uint8Array> handRef_;
  uv_poll_t* wakePoll_ = nullptr;
  xsk_umem* umem_ = nullptr;
  std::vector<Iface> ifaces_;
  std::vector<Socket> socks_;
  std::vector<uint8_t> state_;
  std::vector<uint32_t> owner_;
  std::vector<uint32_t> free_;
  std::vector<InFlight> inflight_, held_;
  std::vector<RouteEntry> routes_;
  std::unordered_map<NeighKey, Mac, NeighHash> neighbors_;
  std::vector<NeighKey> misses_;
  bool cacheValid_ = false;
  unsigned cacheFamily_ = 0;
  uint8_t cacheDst_[16] = {0};
  uint32_t cacheIface_ = 0;
  Mac cacheMac_ = {};
  bool refill_ = true;
  uint32_t rr_ = 0;
  uv_timer_t* timer_ = nullptr;
  bool timerArmed_ = false;
  bool watching_ = false;
  Napi::FunctionReference callback_;
  napi_async_context async_ = nullptr;
  Counters counters_;
  std::string closedWhy_;
};

// The XDP program for a pool of workers (the main thread's): loaded once,
// its interface map, served prefixes and workers' port slices filled, then
// attached to every interface once the workers' sockets are in its socket
// map. Owns one eventfd per worker (the hand-off wake-ups), closed only
// after every worker is gone.
class XdpProgram : public Napi::ObjectWrap<XdpProgram> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "XdpProgram",
                       {
                           InstanceMethod<&XdpProgram::Attach>("attach"),
                           InstanceMethod<&XdpProgram::SetServed>("setServed"),
                           InstanceMethod<&XdpProgram::Handles>("handles"),
                           InstanceMethod<&XdpProgram::Stats>("stats"),
                           InstanceMethod<&XdpProgram::Info>("info"),
                           InstanceMethod<&XdpProgram::Close>("close"),
                       });
  }

  // new XdpProgram({ program, interfaces: [name], served, steer, workers })
  explicit XdpProgram(const Napi::CallbackInfo& info) : Napi::ObjectWrap<XdpProgram>(info) { Construct(info); }

  ~XdpProgram() override { Release(); }

 private:
  void Construct(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) return ThrowType(env, "new XdpProgram needs an options object");
    Napi::Object o = info[0].As<Napi::Object>();
    uint64_t workers;
    if (!o.Get("program").IsString()) return ThrowType(env, "program must be the path of the XDP object file");
    if (!GetUint(o.Get("workers"), env, "workers", kMaxQueues, &workers)) return;
    if (workers < 1) return ThrowRange(env, "workers must be at least 1");
    if (!ReadIfaces(env, o.Get("interfaces"), false, &ifaces_)) return;
    if (!program_.Load(env, o.Get("program").As<Napi::String>().Utf8Value(), ifaces_) ||
        !program_.Served(env, o.Get("served")) || !program_.Steer(env, o.Get("steer"))) {
      return Release();
    }
    for (uint64_t i = 0; i < workers; i++) {
      int fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
      if (fd < 0) {
        ThrowCode(env, "EXDPPROG", "cannot create an eventfd for the workers' hand-offs: " + ErrText(errno));
        return Release();
      }
      wake_.push_back(fd);
    }
  }

  // attach(mode): attach to every interface (the workers' sockets are in the map by now)
  Napi::Value Attach(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    std::string mode = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "auto";
    if (mode != "auto" && mode != "native" && mode != "generic") return ThrowRange(env, "mode must be auto, native or generic"), env.Undefined();
    if (!program_.Attach(env, ifaces_, mode)) Program::Detach(ifaces_);
    return env.Undefined();
  }

  Napi::Value SetServed(const Napi::CallbackInfo& info) {
    if (Alive(info.Env())) program_.Served(info.Env(), info[0]);
    return info.Env().Undefined();
  }

  // handles() -> { xsks: the socket map's fd, wake: [eventfd per worker] } (fds of this process, for the workers)
  Napi::Value Handles(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!Alive(env)) return env.Undefined();
    Napi::Object o = Napi::Object::New(env);
    o.Set("xsks", double(program_.xsks));
    Napi::Array wake = Napi::Array::New(env, wake_.size());
    for (uint32_t i = 0; i < wake_.size(); i++) wake[i] = double(wake_[i]);
    o.Set("wake", wake);
    return o;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    program_.Stats(o);
    return o;
  }

  // info() -> { programId, interfaces: [{ name, ifindex, queues, mode, linkId }] }
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("programId", double(program_.Id()));
    Napi::Array list = Napi::Array::New(env, ifaces_.size());
    for (uint32_t i = 0; i < ifaces_.size(); i++) {
      Napi::Object x = Napi::Object::New(env);
      x.Set("name", ifaces_[i].name);
      x.Set("ifindex", double(ifaces_[i].ifindex));
      x.Set("queues", double(ifaces_[i].queues));
      x.Set("mode", ifaces_[i].mode);
      x.Set("linkId", double(LinkId(ifaces_[i].link)));
      list[i] = x;
    }
    o.Set("interfaces", list);
    return o;
  }

  // close(): detach from every interface, unload; then the eventfds (the workers are gone)
  Napi::Value Close(const Napi::CallbackInfo& info) {
    Release();
    return info.Env().Undefined();
  }

  bool Alive(Napi::Env env) {
    if (program_.obj != nullptr) return true;
    ThrowCode(env, "EXDPCLOSED", "the XDP program is closed");
    return false;
  }

  void Release() {
    Program::Detach(ifaces_);
    program_.Close();
    for (int fd : wake_) close(fd);
    wake_.clear();
  }

  Program program_;
  std::vector<Iface> ifaces_;
  std::vector<int> wake_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("available", Napi::Boolean::New(env, true));
  exports.Set("reason", Napi::String::New(env, ""));
  exports.Set("Xdp", Xdp::Define(env));
  exports.Set("XdpProgram", XdpProgram::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(pias_xdp, Init)
