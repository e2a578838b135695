# The TUN device addon (native/*.cc), loaded by src/io/tun.ts, and the TUN
# steering program (native/steer.bpf.c -> pias_steer.bpf.o). npm builds both
# at install time with node-gyp (a binding.gyp at the package root and no
# install script), against the Node headers npm is configured with; nothing is
# downloaded. Needs g++ and make. liburing (io_uring batches), libbpf and
# clang (the steering program, for more than one worker) are used when
# native/have.sh finds them and left out otherwise: the daemon then says so
# once and does without; the install never fails for their lack.
{
  "variables": {
    "pias_uring%": "<!(sh native/have.sh uring)",
    "pias_bpf%": "<!(sh native/have.sh bpf)"
  },
  "targets": [
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
          "inputs": ["native/steer.bpf.c", "native/build-bpf.sh"],
          "outputs": ["<(PRODUCT_DIR)/pias_steer.bpf.o"],
          "action": ["sh", "native/build-bpf.sh", "<(PRODUCT_DIR)/pias_steer.bpf.o"]
        }
      ]
    }
  ]
}
