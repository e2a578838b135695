# The TUN device addon (native/tun.cc), loaded by src/io/tun.ts. npm builds it
# at install time with node-gyp (a binding.gyp at the package root and no
# install script), against the Node headers npm is configured with; nothing is
# downloaded. Needs g++ and make.
{
  "targets": [
    {
      "target_name": "pias_tun",
      "sources": ["native/tun.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags!": ["-O3"],
      "cflags_cc!": ["-O3"],
      "cflags": ["-O2"]
    }
  ]
}
