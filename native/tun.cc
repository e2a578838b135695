// A Linux TUN queue for the data plane: opens /dev/net/tun (IFF_TUN |
// IFF_NO_PI, non-blocking; optionally with the virtio-net header, offloads
// and multi-queue, negotiated in tun_open.cc), moves batches of packets
// between the device and descriptor slots in the WebAssembly memory — one
// N-API call per batch each way, with readv/write per packet or one
// io_uring_enter per batch (uring_io.cc) — and watches the fd with a
// uv_poll_t on the calling thread's loop (a worker_thread's own loop in a
// worker).
//
// Never blocks (the fd is O_NONBLOCK, io_uring ops RWF_NOWAIT), never
// allocates per packet, and never touches memory outside the Uint8Array it
// is given: every slot is checked against the view's length before the first
// syscall, and bad arguments throw a JS TypeError/RangeError instead of
// crashing. Kernel refusals of a single packet are counted, not thrown.
//
// With the virtio-net header, the device reads and writes a 10-byte
// virtio_net_hdr in front of every packet; it is part of the slot's bytes
// (OFF points at the header, LEN counts it), so batches move it like a
// link-layer header and the core reads and writes it; so does write().
//
// Descriptor layout (little-endian, per slot at desc + i * stride):
//   +0  u32 OFF      where the packet bytes are (readBatch may exchange the
//                    OFF and capacity of two of [0, max) to keep the read
//                    packets first: slots are interchangeable)
//   +4  u32 LEN      capacity on entry to readBatch; packet length
//   +8  u32 WIRELEN  set by readBatch to the bytes read
//   +28 u8  VERDICT  writeBatch writes slots whose verdict matches

#include <napi.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "steering.h"
#include "tun_open.h"
#include "uring_io.h"

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

// Ops per io_uring batch (the ring's size); larger batches go in rounds.
constexpr unsigned kUringEntries = 256;

// A boolean option of an options object (absent: `dflt`).
bool GetFlag(Napi::Object o, const char* key, bool dflt, bool* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) {
    *out = dflt;
    return true;
  }
  if (!v.IsBoolean()) {
    ThrowType(o.Env(), std::string("option ") + key + " must be a boolean");
    return false;
  }
  *out = v.As<Napi::Boolean>().Value();
  return true;
}

// An unsigned option no larger than `max` (absent: `dflt`).
bool GetOptUint(Napi::Object o, const char* key, uint64_t max, uint64_t dflt, uint64_t* out) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) {
    *out = dflt;
    return true;
  }
  double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : -1;
  if (!(d >= 0) || d > double(max) || d != double(uint64_t(d))) {
    ThrowRange(o.Env(), std::string("option ") + key + " must be an integer from 0 to " + std::to_string(max));
    return false;
  }
  *out = uint64_t(d);
  return true;
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
                           InstanceMethod<&Tun::Features>("features"),
                           InstanceMethod<&Tun::AttachSteering>("attachSteering"),
                       });
  }

  // new Tun(name?: string, options?: { vnetHdr, offload, multiQueue, io, refuse }):
  // opens a queue of the device; throws on failure. What the kernel refused
  // is in features().notes.
  explicit Tun(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Tun>(info) {
    Napi::Env env = info.Env();
    pias::TunRequest req;
    req.name = "pias%d";  // the kernel fills in the number
    if (info.Length() > 0 && !info[0].IsUndefined()) {
      if (!info[0].IsString()) {
        ThrowType(env, "the interface name must be a string");
        return;
      }
      req.name = info[0].As<Napi::String>().Utf8Value();
      if (req.name.empty() || req.name.size() >= IFNAMSIZ || req.name.find('\0') != std::string::npos) {
        ThrowRange(env, "the interface name must be 1 to " + std::to_string(IFNAMSIZ - 1) + " bytes, got \"" +
                            req.name + "\"");
        return;
      }
    }
    bool uring = false;
    uint64_t offload = 0, refuse = 0;
    if (info.Length() > 1 && !info[1].IsUndefined()) {
      if (!info[1].IsObject()) {
        ThrowType(env, "the options must be an object");
        return;
      }
      Napi::Object o = info[1].As<Napi::Object>();
      Napi::Value io = o.Get("io");
      if (!io.IsUndefined() && !(io.IsString() && (io.ToString().Utf8Value() == "readv" || io.ToString().Utf8Value() == "uring"))) {
        ThrowType(env, "option io must be \"readv\" or \"uring\"");
        return;
      }
      uring = io.IsString() && io.ToString().Utf8Value() == "uring";
      if (!GetFlag(o, "vnetHdr", false, &req.vnetHdr) || !GetFlag(o, "multiQueue", false, &req.multiQueue) ||
          !GetOptUint(o, "offload", pias::kOffAll, pias::kOffAll, &offload) ||
          !GetOptUint(o, "refuse", kMaxU32, 0, &refuse)) {
        return;
      }
    }
    req.offload = unsigned(offload);
    req.refuse = unsigned(refuse);
    refuse_ = req.refuse;
    pias::TunOpened opened = pias::OpenTun(req);
    if (opened.fd < 0) {
      ThrowSystem(env, opened.error, opened.err);
      return;
    }
    fd_ = opened.fd;
    name_ = opened.name;
    vnet_ = opened.vnetHdr;
    offload_ = opened.offload;
    multiQueue_ = opened.multiQueue;
    notes_ = std::move(opened.notes);
    if (uring) {
      std::string why;
      if ((refuse & pias::kRefuseUring) != 0) {
        why = "refused (test)";
      } else if (uring_.Init(kUringEntries, &why)) {
        iov_.resize(2 * size_t(uring_.entries()));
        res_.resize(uring_.entries());
      }
      if (!uring_.ready()) notes_.push_back("io_uring unavailable (" + why + "): readv and write per packet");
    }
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

    uint64_t got = uring_.ready() ? ReadUring(mem, desc, stride, max) : 0;
    if (!uring_.ready()) got = ReadReadv(mem, desc, stride, max, got);
    return Napi::Number::New(env, double(got));
  }

  // readv until EAGAIN into descriptors [from, max); returns the count read.
  uint64_t ReadReadv(uint8_t* mem, uint64_t desc, uint64_t stride, uint64_t max, uint64_t from) {
    uint64_t got = from, skipped = 0;
    while (got < max) {
      uint8_t* d = mem + desc + got * stride;
      uint32_t cap = LoadU32(d + 4);
      // A TUN read returns only what fit, so a second, one-byte buffer
      // behind the slot is what tells a packet that filled the slot exactly
      // from one that was longer (and is now cut short and lost).
      uint8_t spill;
      struct iovec iov[2] = {{mem + LoadU32(d), cap}, {&spill, 1}};
      ssize_t n = ::readv(fd_, iov, 2);
      stats_.readCalls++;
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
    return got;
  }

  // Rounds of non-blocking reads, one io_uring_enter each: a round of k
  // reads into descriptors [got, got + k); the next round, twice as large,
  // only when every read of this one returned a packet. The first round is
  // as large as the last call's whole batch, so an idle device costs a few
  // empty reads, a busy one few rounds. Packets keep descriptor order
  // [0, got) by exchanging a failed read's slot with a later successful one.
  uint64_t ReadUring(uint8_t* mem, uint64_t desc, uint64_t stride, uint64_t max) {
    uint64_t got = 0, skipped = 0;
    uint64_t k = std::max<uint64_t>(4, lastBatch_);
    while (got < max) {
      k = std::min<uint64_t>({k, max - got, uring_.entries()});
      static uint8_t spill;  // written by the kernel only for packets longer than their slot, never read
      for (uint64_t j = 0; j < k; j++) {
        const uint8_t* d = mem + desc + (got + j) * stride;
        iov_[2 * j] = {mem + LoadU32(d), LoadU32(d + 4)};
        iov_[2 * j + 1] = {&spill, 1};
      }
      uint64_t calls = uring_.calls();
      int rc = uring_.Run(fd_, false, iov_.data(), 2, unsigned(k), res_.data());
      stats_.readCalls += uring_.calls() - calls;
      if (rc < 0) {
        FellBack(rc);
        break;  // the caller goes on with readv
      }
      bool more = true;
      const uint64_t base = got;
      for (uint64_t j = 0; j < k; j++) {
        int32_t n = res_[j];
        uint8_t* d = mem + desc + (base + j) * stride;
        uint32_t cap = LoadU32(d + 4);
        if (n <= 0) {
          if (n < 0 && n != -EAGAIN && n != -EINTR) stats_.readErrors++;
          more = false;
          continue;
        }
        if (uint32_t(n) > cap) {
          stats_.truncated++;
          skipped++;
          continue;
        }
        uint8_t* to = mem + desc + got * stride;
        if (to != d) {  // exchange the slots: OFF and capacity
          uint32_t off = LoadU32(to), toCap = LoadU32(to + 4);
          StoreU32(to, LoadU32(d));
          StoreU32(d, off);
          StoreU32(d + 4, toCap);
        }
        StoreU32(to + 4, uint32_t(n));
        StoreU32(to + 8, uint32_t(n));
        stats_.read++;
        got++;
      }
      if (!more || skipped >= max) break;
      k *= 2;
    }
    lastBatch_ = got;
    return got;
  }

  // io_uring stopped working: one note, and readv from now on.
  void FellBack(int rc) {
    stats_.uringFailures++;
    notes_.push_back(std::string("io_uring failed (") + strerror(-rc) + "): readv and write per packet from now on");
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

    uint64_t written = 0, i = 0;
    if (uring_.ready()) written = WriteUring(mem, desc, stride, count, uint8_t(verdict), &i);
    for (; i < count; i++) {
      const uint8_t* d = mem + desc + i * stride;
      if (d[kVerdictAt] != verdict) continue;
      struct iovec iov = {mem + LoadU32(d), LoadU32(d + 4)};
      if (WriteOne(&iov, 1)) written++;
    }
    return Napi::Number::New(env, double(written));
  }

  // Writes the matching packets of descriptors [0, count) in rounds of one
  // io_uring_enter; *next is where the caller should go on with write(2)
  // (count when all went through io_uring).
  uint64_t WriteUring(uint8_t* mem, uint64_t desc, uint64_t stride, uint64_t count, uint8_t verdict, uint64_t* next) {
    uint64_t written = 0, i = 0;
    while (i < count) {
      unsigned k = 0;
      uint64_t start = i;
      for (; i < count && k < uring_.entries(); i++) {
        const uint8_t* d = mem + desc + i * stride;
        if (d[kVerdictAt] != verdict) continue;
        iov_[k++] = {mem + LoadU32(d), LoadU32(d + 4)};
      }
      if (k == 0) break;
      uint64_t calls = uring_.calls();
      int rc = uring_.Run(fd_, true, iov_.data(), 1, k, res_.data());
      stats_.writeCalls += uring_.calls() - calls;
      if (rc < 0) {
        FellBack(rc);
        i = start;  // nothing of this round was reaped: write it again, per packet
        break;
      }
      for (unsigned j = 0; j < k; j++) {
        if (Counted(res_[j], iov_[j].iov_len)) written++;
      }
    }
    *next = i;
    return written;
  }

  // write(frame) -> true if the kernel took it (with the virtio-net header, the frame starts with one)
  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    uint8_t* data;
    size_t len;
    if (!CheckOpen(env) || !GetBytes(info, 0, "packet", &data, &len)) return env.Undefined();
    struct iovec iov = {data, len};
    return Napi::Boolean::New(env, WriteOne(&iov, 1));
  }

  bool WriteOne(const struct iovec* iov, int n) {
    size_t total = 0;
    for (int i = 0; i < n; i++) total += iov[i].iov_len;
    for (;;) {
      ssize_t w = ::writev(fd_, iov, n);
      stats_.writeCalls++;
      if (w < 0 && errno == EINTR) continue;
      return Counted(w < 0 ? -errno : int32_t(w), total);
    }
  }

  // Counts one write's result (bytes or -errno); true if the whole packet went.
  bool Counted(int32_t res, size_t want) {
    if (res >= 0 && size_t(res) == want) {
      stats_.written++;
      return true;
    }
    if (res == -EAGAIN || res == -EWOULDBLOCK || res == -ENOBUFS) {
      stats_.writeDropped++;
    } else {
      stats_.writeErrors++;  // EINVAL (not IP, a bad virtio-net header), EIO, a short write, ...
    }
    return false;
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
    uring_.Shutdown();
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
    o.Set("readCalls", double(stats_.readCalls));
    o.Set("writeCalls", double(stats_.writeCalls));
    o.Set("uringFailures", double(stats_.uringFailures));
    return o;
  }

  // attachSteering(objPath, { proxy4, proxy6, portMin, portMax, slice, workers }) -> null, or why it could not
  // (proxy4: 4 bytes or null; proxy6: 16 bytes or null; the rest integers)
  Napi::Value AttachSteering(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!CheckOpen(env)) return env.Undefined();
    if (!info[0].IsString() || !info[1].IsObject()) {
      ThrowType(env, "attachSteering needs a path and a configuration object");
      return env.Undefined();
    }
    std::string path = info[0].As<Napi::String>().Utf8Value();
    Napi::Object o = info[1].As<Napi::Object>();
    pias::SteerConfig cfg{};
    uint64_t portMin, portMax, slice, workers;
    if (!GetOptUint(o, "portMin", 65535, 0, &portMin) || !GetOptUint(o, "portMax", 65535, 0, &portMax) ||
        !GetOptUint(o, "slice", 65535, 0, &slice) || !GetOptUint(o, "workers", 256, 0, &workers)) {
      return env.Undefined();
    }
    if (slice == 0 || workers == 0 || portMin > portMax) {
      ThrowRange(env, "attachSteering: slice and workers must be positive and portMin <= portMax");
      return env.Undefined();
    }
    for (const char* key : {"proxy4", "proxy6"}) {
      Napi::Value v = o.Get(key);
      if (v.IsNull() || v.IsUndefined()) continue;
      size_t want = key[5] == '4' ? 4 : 16;
      if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array ||
          v.As<Napi::Uint8Array>().ElementLength() != want) {
        ThrowType(env, std::string("attachSteering: ") + key + " must be a Uint8Array of " + std::to_string(want) + " bytes");
        return env.Undefined();
      }
      Napi::Uint8Array a = v.As<Napi::Uint8Array>();
      if (want == 4) {
        std::memcpy(&cfg.proxy4, a.Data(), 4);
        cfg.has4 = 1;
      } else {
        std::memcpy(cfg.proxy6, a.Data(), 16);
        cfg.has6 = 1;
      }
    }
    cfg.portMin = uint32_t(portMin);
    cfg.portMax = uint32_t(portMax);
    cfg.slice = uint32_t(slice);
    cfg.workers = uint32_t(workers);
    std::string why;
    if ((refuse_ & pias::kRefuseSteering) != 0) {
      why = "refused (test)";
    } else if (pias::AttachSteering(fd_, path, cfg, &why)) {
      return env.Null();
    }
    return Napi::String::New(env, why);
  }

  // features() -> what this queue runs with, and what the kernel refused
  Napi::Value Features(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("vnetHdr", vnet_);
    o.Set("offload", double(offload_));
    o.Set("offloadNames", pias::OffloadNames(offload_));
    o.Set("multiQueue", multiQueue_);
    o.Set("io", uring_.ready() ? "uring" : "readv");
    o.Set("uringBuilt", pias::UringBuilt());
    Napi::Array notes = Napi::Array::New(env, notes_.size());
    for (size_t i = 0; i < notes_.size(); i++) notes.Set(uint32_t(i), notes_[i]);
    o.Set("notes", notes);
    return o;
  }

  struct Counters {
    uint64_t read = 0, written = 0, truncated = 0, writeDropped = 0, writeErrors = 0, readErrors = 0;
    uint64_t readCalls = 0, writeCalls = 0, uringFailures = 0;
  };

  int fd_ = -1;
  std::string name_;
  uv_poll_t* poll_ = nullptr;
  bool watching_ = false;
  Napi::FunctionReference callback_;
  napi_async_context async_ = nullptr;
  Counters stats_;
  bool vnet_ = false;
  unsigned offload_ = 0;
  bool multiQueue_ = false;
  std::vector<std::string> notes_;
  pias::UringIo uring_;
  std::vector<struct iovec> iov_;  // one batch's iovecs for io_uring (2 per read, 1 per write)
  std::vector<int32_t> res_;       // and its results
  uint64_t lastBatch_ = 0;         // packets the last uring read returned: the next first round's size
  unsigned refuse_ = 0;            // steps to treat as refused (tests)
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Tun", Tun::Define(env));
  return exports;
}

}  // namespace

NODE_API_MODULE(pias_tun, Init)
