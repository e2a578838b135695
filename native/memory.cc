// Transparent huge pages for the Wasm core's tables: madvise(MADV_HUGEPAGE)
// over the 2 MiB-aligned interior of the core's linear memory (an
// ArrayBuffer), so the flow table and its index, touched at random, cost a
// TLB entry per 2 MiB instead of per 4 KiB (Linux with transparent_hugepage
// set to "madvise" or "always"); or of its part from a byte offset on, for
// the large host buffers a replay streams through, whose pages a 2 MiB fault
// backs 512 at a time. Node cannot make the call itself; V8 does not make it
// for Wasm memory.
//
// Only advises: never maps, unmaps or touches memory, and never throws for a
// kernel refusal (the caller gets -errno and the tables keep 4 KiB pages).

#include <napi.h>

#include <cerrno>
#include <cstdint>

#ifdef __linux__
#include <sys/mman.h>
#endif

namespace {

constexpr uintptr_t kHuge = uintptr_t{2} << 20;

// adviseHugePages(buffer: ArrayBuffer, from = 0) -> [start, bytes] advised
// (the whole 2 MiB pages of buffer[from..]), or [0, -errno]
Napi::Value AdviseHugePages(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArrayBuffer()) {
    Napi::TypeError::New(env, "adviseHugePages: expected an ArrayBuffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  auto buffer = info[0].As<Napi::ArrayBuffer>();
  double from = info.Length() > 1 && info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 0;
  if (!(from >= 0 && from <= double(buffer.ByteLength()))) {
    Napi::RangeError::New(env, "adviseHugePages: offset outside the buffer").ThrowAsJavaScriptException();
    return env.Undefined();
  }
  uintptr_t p = reinterpret_cast<uintptr_t>(buffer.Data());
  uintptr_t start = (p + uintptr_t(from) + kHuge - 1) & ~(kHuge - 1);
  uintptr_t end = (p + buffer.ByteLength()) & ~(kHuge - 1);
  double advised = 0;
  if (end > start) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    advised = madvise(reinterpret_cast<void*>(start), end - start, MADV_HUGEPAGE) == 0 ? double(end - start) : -double(errno);
#else
    advised = -double(ENOSYS);
#endif
  }
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, Napi::Number::New(env, double(start)));
  out.Set(1u, Napi::Number::New(env, advised));
  return out;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("adviseHugePages", Napi::Function::New(env, AdviseHugePages));
  return exports;
}

}  // namespace

NODE_API_MODULE(pias_memory, Init)
