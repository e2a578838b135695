# The TUN device addon (native/*.cc), loaded by src/io/tun.ts. npm builds it
# at install time with node-gyp (a binding.gyp at the package root and no
# install script), against the Node headers npm is configured with; nothing is
# downloaded. Needs g++ and make. liburing (io_uring batches) is used when
# native/have.sh finds it, and left out otherwise: the addon then says so
# once and uses readv/write; the install never fails for its lack.
{
  "variables": {
    "pias_uring%": "<!(sh native/have.sh uring)"
  },
  "targets": [
    {
      "target_name": "pias_tun",
      "sources": ["native/tun.cc", "native/tun_open.cc", "native/uring_io.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags!": ["-O3"],
      "cflags_cc!": ["-O3"],
      "cflags": ["-O2"],
      "conditions": [
        ["pias_uring==1", {
          "defines": ["PIAS_HAVE_URING"],
          "libraries": ["-luring"]
        }]
      ]
    }
  ]
}
