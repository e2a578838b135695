// Built instead of native/xdp.cc where the install found no clang, libxdp
// or libbpf (native/xdp-probe.mjs decides): the AF_XDP backend is then
// unavailable, and this module only says why, so that `pias run` with
// `io: xdp` can say it in one line. Never does anything else.

#include <napi.h>

#ifndef PIAS_XDP_UNAVAILABLE
#define PIAS_XDP_UNAVAILABLE "the AF_XDP addon was built without its dependencies"
#endif

namespace {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("available", Napi::Boolean::New(env, false));
  exports.Set("reason", Napi::String::New(env, PIAS_XDP_UNAVAILABLE));
  return exports;
}

}  // namespace

NODE_API_MODULE(pias_xdp, Init)
