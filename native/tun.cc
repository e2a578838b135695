// A Linux TUN device for the data plane: opens /dev/net/tun (IFF_TUN |
// IFF_NO_PI, non-blocking), moves batches of packets between the device and
// descriptor slots in the WebAssembly memory, and watches the fd with a
// uv_poll_t on the main loop thread.
//
// Never blocks (the fd is O_NONBLOCK), never allocates per packet, and never
// touches memory outside the Uint8Array it is given: every slot is checked
// against the view's length before the first syscall, and bad arguments throw
// a JS TypeError/RangeError instead of crashing. Kernel refusals of a single
// packet are counted, not thrown.
//
// Descriptor layout (little-endian, per slot at desc + i * stride):
//   +0  u32 OFF      where the packet bytes are
//   +4  u32 LEN      capacity on entry to readBatch; packet length
//   +8  u32 WIRELEN  set by readBatch to the bytes read
//   +28 u8  VERDICT  writeBatch writes slots whose verdict matches

#include <napi.h>
#include <uv.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>

#ifdef __linux__
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#endif

namespace {

constexpr uint64_t kMaxU32 = 0xffffffffu;
constexpr uint64_t kReadDescBytes = 12;    // OFF, LEN, WIRELEN
constexpr uint64_t kWriteDescBytes = 29;   // ... up to VERDICT at +28
constexpr size_t kVerdictAt = 28;

inline uint32_t LoadU32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

inline void StoreU32(uint8_t* p, uint32_t v) {
  p[0] = uint8_t(v);
  p[1] = uint8_t(v >> 8);
  p[2] = uint8_t(v >> 16);
  p[3] = uint8_t(v >> 24);
}

// The helpers below return false after throwing a JS exception; the caller
// returns at once.

void ThrowType(Napi::Env env, const std::string& msg) {
  Napi::TypeError::New(env, msg).ThrowAsJavaScriptException();
}

void ThrowRange(Napi::Env env, const std::string& msg) {
  Napi::RangeError::New(env, msg).ThrowAsJavaScriptException();
}

// A Uint8Array argument: its data (already adjusted by the view's byteOffset)
// and length. A view over a detached buffer (a WebAssembly memory that grew)
// has length 0, so every later bounds check fails cleanly.
bool GetBytes(const Napi::CallbackInfo& info, size_t i, const char* what, uint8_t** data, size_t* len) {
  Napi::Value v = info[i];
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    ThrowType(info.Env(), std::string(what) + " must be a Uint8Array");
    return false;
  }
  Napi::Uint8Array a = v.As<Napi::Uint8Array>();
  *len = a.ElementLength();
  *data = *len ? a.Data() : nullptr;
  return true;
}

// A non-negative integer argument no larger than `max`.
bool GetUint(const Napi::CallbackInfo& info, size_t i, const char* what, uint64_t max, uint64_t* out) {
  Napi::Value v = info[i];
  if (!v.IsNumber()) {
    ThrowType(info.Env(), std::string(what) + " must be a number");
    return false;
  }
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d >= 0) || d > double(max) || d != double(uint64_t(d))) {
    ThrowRange(info.Env(), std::string(what) + " must be an integer from 0 to " + std::to_string(max) +
                               ", got " + v.ToString().Utf8Value());
    return false;
  }
  *out = uint64_t(d);
  return true;
}

// Descriptors [0, n) of `stride` bytes from `desc` must lie within `len`.
bool CheckDescriptors(Napi::Env env, size_t len, uint64_t desc, uint64_t stride, uint64_t n) {
  if (n == 0) return true;
  if (desc > len || n > (len - desc) / stride) {
    ThrowRange(env, "descriptors [" + std::to_string(desc) + ", " + std::to_string(desc) + " + " +
                        std::to_string(stride) + " * " + std::to_string(n) + ") run past the memory's " +
                        std::to_string(len) + " bytes");
    return false;
  }
  return true;
}

bool CheckSlot(Napi::Env env, size_t len, uint64_t i, uint32_t off, uint32_t size, const char* field) {
  if (off > len || size > len - off) {
    ThrowRange(env, "descriptor " + std::to_string(i) + ": packet bytes [" + std::to_string(off) + ", " +
                        std::to_string(off) + " + " + field + " " + std::to_string(size) +
                        ") lie outside the memory's " + std::to_string(len) + " bytes");
    return false;
  }
  return true;
}

std::string ErrnoText(int err) {
  return std::string(strerror(err)) + " (" + uv_err_name(-err) + ")";
}

// An Error carrying the errno's name as `code`, like Node's system errors.
void ThrowSystem(Napi::Env env, const std::string& msg, int err) {
  Napi::Error e = Napi::Error::New(env, msg);
  e.Set("code", Napi::String::New(env, uv_err_name(-err)));
  e.Set("errno", Napi::Number::New(env, err));
  e.ThrowAsJavaScriptException();
}

#ifndef IFNAMSIZ
#define IFNAMSIZ 16
#endif

// Opens /dev/net/tun and creates the interface; returns the fd and sets
// *name to the name the kernel gave, or throws and returns -1.
int OpenTun(Napi::Env env, const std::string& want, std::string* name) {
#ifdef __linux__
  int fd = ::open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    if (err == EPERM) {
      ThrowSystem(env, "opening a TUN device needs root (CAP_NET_ADMIN)", err);
    } else if (err == EACCES) {
      ThrowSystem(env, "opening a TUN device needs root (CAP_NET_ADMIN): /dev/net/tun: " + ErrnoText(err), err);
    } else if (err == ENOENT || err == ENODEV || err == ENXIO) {
      ThrowSystem(env, "/dev/net/tun is missing (modprobe tun): " + ErrnoText(err), err);
    } else {
      ThrowSystem(env, "cannot open /dev/net/tun: " + ErrnoText(err), err);
    }
    return -1;
  }
  struct ifreq ifr;
  std::memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  std::memcpy(ifr.ifr_name, want.data(), want.size());
  if (::ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    ::close(fd);
    if (err == EPERM || err == EACCES) {
      ThrowSystem(env, "opening a TUN device needs root (CAP_NET_ADMIN)", err);
    } else {
      ThrowSystem(env, "cannot create TUN interface \"" + want + "\" (ioctl TUNSETIFF): " + ErrnoText(err), err);
    }
    return -1;
  }
  name->assign(ifr.ifr_name, strnlen(ifr.ifr_name, IFNAMSIZ));
  return fd;
#else
  (void)want;
  (void)name;
  ThrowSystem(env, "TUN devices are supported on Linux only", ENOSYS);
  return -1;
#endif
}

class Tun : public Napi::ObjectWrap<Tun> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Tun",
                       {
                           InstanceAccessor<&Tun::Name>("name"),
                           InstanceMethod<&Tun::ReadBatch>("readBatch"),
                           InstanceMethod<&Tun::WriteBatch>("writeBatch"),
                           InstanceMethod<&Tun::Write>("write"),
                           InstanceMethod<&Tun::OnReadable>("onReadable"),
                           InstanceMethod<&Tun::Pause>("pause"),
                           InstanceMethod<&Tun::Close>("close"),
                           InstanceMethod<&Tun::Stats>("stats"),
                       });
  }

  // new Tun(name?: string): opens the device; throws on failure.
  explicit Tun(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Tun>(info) {
    Napi::Env env = info.Env();
    std::string want = "pias%d";  // the kernel fills in the number
    if (info.Length() > 0 && !info[0].IsUndefined()) {
      if (!info[0].IsString()) {
        ThrowType(env, "the interface name must be a string");
        return;
      }
      want = info[0].As<Napi::String>().Utf8Value();
      if (want.empty() || want.size() >= IFNAMSIZ || want.find('\0') != std::string::npos) {
        ThrowRange(env, "the interface name must be 1 to " + std::to_string(IFNAMSIZ - 1) + " bytes, got \"" +
                            want + "\"");
        return;
      }
    }
    fd_ = OpenTun(env, want, &name_);
  }

  ~Tun() override {
    // Reached from the GC finalizer (never while watching: watching holds a
    // strong reference) or when the constructor failed. No JS here.
    ReleaseFd();
  }

 private:
  Napi::Value Name(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), name_); }

  bool CheckOpen(Napi::Env env) {
    if (fd_ >= 0) return true;
    Napi::Error::New(env, "the TUN device " + name_ + " is closed").ThrowAsJavaScriptException();
    return false;
  }

  // readBatch(mem, desc, stride, max) -> packets read
  Napi::Value ReadBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint8_t* mem;
    size_t len;
    uint64_t desc, stride, max;
    if (!CheckOpen(env) || !GetBytes(info, 0, "mem", &mem, &len) || !GetUint(info, 1, "desc", kMaxU32, &desc) ||
        !GetUint(info, 2, "stride", kMaxU32, &stride) || !GetUint(info, 3, "max", kMaxU32, &max)) {
      return env.Undefined();
    }
    if (stride < kReadDescBytes) {
      ThrowRange(env, "stride must be at least " + std::to_string(kReadDescBytes) + ", got " + std::to_string(stride));
      return env.Undefined();
    }
    if (!CheckDescriptors(env, len, desc, stride, max)) return env.Undefined();
    // Check every slot before reading anything: a throw halfway would lose
    // the packets already taken from the device.
    for (uint64_t i = 0; i < max; i++) {
      const uint8_t* d = mem + desc + i * stride;
      uint32_t cap = LoadU32(d + 4);
      if (cap == 0) {
        ThrowRange(env, "descriptor " + std::to_string(i) + ": capacity (LEN) is 0");
        return env.Undefined();
      }
      if (!CheckSlot(env, len, i, LoadU32(d), cap, "capacity")) return env.Undefined();
    }

    uint64_t got = 0, skipped = 0;
    while (got < max) {
      uint8_t* d = mem + desc + got * stride;
      uint32_t cap = LoadU32(d + 4);
      // A TUN read returns only what fit, so a second, one-byte buffer
      // behind the slot is what tells a packet that filled the slot exactly
      // from one that was longer (and is now cut short and lost).
      uint8_t spill;
      struct iovec iov[2] = {{mem + LoadU32(d), cap}, {&spill, 1}};
      ssize_t n = ::readv(fd_, iov, 2);
      if (n < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) stats_.readErrors++;
        break;
      }
      if (n == 0) break;
      // Truncated: skip it, but at most `max` per call so a flood of
      // oversized packets cannot hold the loop.
      if (uint64_t(n) > cap) {
        stats_.truncated++;
        if (++skipped >= max) break;
        continue;
      }
      StoreU32(d + 4, uint32_t(n));
      StoreU32(d + 8, uint32_t(n));
      stats_.read++;
      got++;
    }
    return Napi::Number::New(env, double(got));
  }

  // writeBatch(mem, desc, stride, count, verdict) -> packets written
  Napi::Value WriteBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint8_t* mem;
    size_t len;
    uint64_t desc, stride, count, verdict;
    if (!CheckOpen(env) || !GetBytes(info, 0, "mem", &mem, &len) || !GetUint(info, 1, "desc", kMaxU32, &desc) ||
        !GetUint(info, 2, "stride", kMaxU32, &stride) || !GetUint(info, 3, "count", kMaxU32, &count) ||
        !GetUint(info, 4, "verdict", 255, &verdict)) {
      return env.Undefined();
    }
    if (stride < kWriteDescBytes) {
      ThrowRange(env, "stride must be at least " + std::to_string(kWriteDescBytes) + ", got " + std::to_string(stride));
      return env.Undefined();
    }
    if (!CheckDescriptors(env, len, desc, stride, count)) return env.Undefined();
    for (uint64_t i = 0; i < count; i++) {
      const uint8_t* d = mem + desc + i * stride;
      if (d[kVerdictAt] != verdict) continue;
      if (!CheckSlot(env, len, i, LoadU32(d), LoadU32(d + 4), "LEN")) return env.Undefined();
    }

    uint64_t written = 0;
    for (uint64_t i = 0; i < count; i++) {
      const uint8_t* d = mem + desc + i * stride;
      if (d[kVerdictAt] != verdict) continue;
      if (WriteOne(mem + LoadU32(d), LoadU32(d + 4))) written++;
    }
    return Napi::Number::New(env, double(written));
  }

  // write(packet) -> true if the kernel took it
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint8_t* data;
    size_t len;
    if (!CheckOpen(env) || !GetBytes(info, 0, "packet", &data, &len)) return env.Undefined();
    return Napi::Boolean::New(env, WriteOne(data, len));
  }

  bool WriteOne(const uint8_t* p, size_t n) {
    for (;;) {
      ssize_t w = ::write(fd_, p, n);
      if (w >= 0 && size_t(w) == n) {
        stats_.written++;
        return true;
      }
      if (w < 0 && errno == EINTR) continue;
      if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
        stats_.writeDropped++;
      } else {
        stats_.writeErrors++;  // EINVAL (not IP), EIO, a short write, ...
      }
      return false;
    }
  }

  // onReadable(cb): call cb (no arguments) whenever the fd is readable.
  Napi::Value OnReadable(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (!info[0].IsFunction()) {
      ThrowType(env, "onReadable needs a function");
      return env.Undefined();
    }
    if (poll_ == nullptr) {
      uv_loop_t* loop = nullptr;
      if (napi_get_uv_event_loop(env, &loop) != napi_ok || loop == nullptr) {
        Napi::Error::New(env, "cannot get the event loop").ThrowAsJavaScriptException();
        return env.Undefined();
      }
      uv_poll_t* poll = new uv_poll_t;
      int rc = uv_poll_init(loop, poll, fd_);
      if (rc != 0) {
        delete poll;
        ThrowSystem(env, std::string("cannot watch the TUN device: ") + uv_strerror(rc), -rc);
        return env.Undefined();
      }
      poll->data = this;
      poll_ = poll;
    }
    callback_ = Napi::Persistent(info[0].As<Napi::Function>());
    if (!watching_) {
      int rc = uv_poll_start(poll_, UV_READABLE, OnPoll);
      if (rc != 0) {
        callback_.Reset();
        ThrowSystem(env, std::string("cannot watch the TUN device: ") + uv_strerror(rc), -rc);
        return env.Undefined();
      }
      napi_async_init(env, Value(), Napi::String::New(env, "PiasTunReadable"), &async_);
      Ref();  // the callback may fire after JS dropped its last reference
      watching_ = true;
    }
    return env.Undefined();
  }

  static void OnPoll(uv_poll_t* handle, int status, int /*events*/) {
    Tun* self = static_cast<Tun*>(handle->data);
    if (self == nullptr || !self->watching_) return;
    if (status < 0) self->stats_.readErrors++;
    Napi::Env env = self->Env();
    Napi::HandleScope scope(env);
    // MakeCallback runs queued microtasks and nextTicks afterwards, as for
    // any I/O callback. `self` may be closed (not freed: finalizers run
    // later, from the loop) once it returns.
    self->callback_.MakeCallback(self->Value(), {}, self->async_);
    if (env.IsExceptionPending()) {
      Napi::Error err = env.GetAndClearPendingException();
      napi_fatal_exception(env, err.Value());  // 'uncaughtException', as from any callback
    }
  }

  void StopWatching() {
    if (!watching_) return;
    uv_poll_stop(poll_);
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
    StopWatching();
    ReleaseFd();
    return info.Env().Undefined();
  }

  // Closes the poll handle (freed by libuv's close callback) and the fd.
  void ReleaseFd() {
    if (poll_ != nullptr) {
      poll_->data = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(poll_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
      poll_ = nullptr;
    }
    if (fd_ >= 0) {
#ifdef __linux__
      ::close(fd_);
#endif
      fd_ = -1;
    }
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("read", double(stats_.read));
    o.Set("written", double(stats_.written));
    o.Set("truncated", double(stats_.truncated));
    o.Set("writeDropped", double(stats_.writeDropped));
    o.Set("writeErrors", double(stats_.writeErrors));
    o.Set("readErrors", double(stats_.readErrors));
    return o;
  }

  struct Counters {
    uint64_t read = 0, written = 0, truncated = 0, writeDropped = 0, writeErrors = 0, readErrors = 0;
  };

  int fd_ = -1;
  std::string name_;
  uv_poll_t* poll_ = nullptr;
  bool watching_ = false;
  Napi::FunctionReference callback_;
  napi_async_context async_ = nullptr;
  Counters stats_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Tun", Tun::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(pias_tun, Init)
