# The native addons, built by npm at install time with node-gyp (a
# binding.gyp at the package root and no install script), against the Node
# headers npm is configured with; nothing is downloaded. Need g++ and make.
#   pias_memory (native/memory.cc, loaded by src/core/hugepages.ts): huge
#     pages for the core's tables (optional: without it they use 4 KiB pages).
#   pias_tun (native/tun.cc, tun_open.cc, uring_io.cc, steering.cc, loaded by
#     src/io/tun.ts): the TUN device. liburing (io_uring batches) and libbpf
#     (loading the steering program) are used when native/have.sh finds them
#     and left out otherwise: the daemon then says so once and does without.
#   pias_steer (native/steer.bpf.c -> pias_steer.bpf.o, by native/build-bpf.sh
#     with clang; an empty file without clang): the TUN steering program that
#     one worker per core needs.
#   pias_xdp (native/xdp.cc + the XDP program native/xdp_kern.c, loaded by
#     src/io/xdp.ts): AF_XDP. Needs clang, libxdp-dev and libbpf-dev; where
#     native/xdp-probe.mjs finds them missing, native/xdp-stub.cc is built
#     instead and only says why, so the install still succeeds.
{
  "variables": {
    "pias_xdp": "<!(node native/xdp-probe.mjs)",
    "pias_uring%": "<!(sh native/have.sh uring)",
    "pias_bpf%": "<!(sh native/have.sh bpf)"
  },
  "targets": [
    {
      "target_name": "pias_memory",
      "sources": ["native/memory.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags!": ["-O3"],
      "cflags_cc!": ["-O3"],
      "cflags": ["-O2"]
    },
    {
      "target_name": "pias_tun",
      "sources": ["native/tun.cc", "native/tun_open.cc", "native/uring_io.cc", "native/steering.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags!": ["-O3"],
      "cflags_cc!": ["-O3"],
      "cflags": ["-O2"],
      "conditions": [
        ["pias_uring==1", {
          "defines": ["PIAS_HAVE_URING"],
          "libraries": ["-luring"]
        }],
        ["pias_bpf==1", {
          "defines": ["PIAS_HAVE_BPF"],
          "libraries": ["-lbpf"]
        }]
      ]
    },
    {
      "target_name": "pias_steer",
      "type": "none",
      "actions": [
        {
          "action_name": "steer_bpf",
          "inputs": ["native/steer.bpf.c", "native/steer_config.h", "native/build-bpf.sh"],
          "outputs": ["<(PRODUCT_DIR)/pias_steer.bpf.o"],
          "action": ["sh", "native/build-bpf.sh", "<(PRODUCT_DIR)/pias_steer.bpf.o"]
        }
      ]
    },
    {
      "target_name": "pias_xdp",
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags!": ["-O3"],
      "cflags_cc!": ["-O3"],
      "cflags": ["-O2"],
      "conditions": [
        ["pias_xdp=='yes'", {
          "sources": ["native/xdp.cc"],
          "libraries": ["-lxdp", "-lbpf"],
          "actions": [
            {
              "action_name": "xdp_kern",
              "inputs": ["native/xdp_kern.c", "native/steer_config.h"],
              "outputs": ["<(PRODUCT_DIR)/pias_xdp_kern.o"],
              "action": ["clang", "-O2", "-g", "-Wall", "-target", "bpf", "-I", "<!(node native/xdp-probe.mjs multiarch)",
                         "-c", "native/xdp_kern.c", "-o", "<(PRODUCT_DIR)/pias_xdp_kern.o"]
            }
          ]
        }, {
          "sources": ["native/xdp-stub.cc"],
          "defines": ["PIAS_XDP_UNAVAILABLE=\"<!(node native/xdp-probe.mjs reason)\""]
        }]
      ]
    }
  ]
}
