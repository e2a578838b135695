// Decides, when node-gyp configures the package, whether the AF_XDP addon
// (native/xdp.cc + the XDP program native/xdp_kern.c) can be built here, so
// that `npm install` succeeds without clang or libxdp: binding.gyp then
// builds native/xdp-stub.cc, which only reports why the backend is missing.
//
//   node native/xdp-probe.mjs           "yes" or "no" (and, for no, one line on stderr saying why)
//   node native/xdp-probe.mjs reason    why not (one line; empty when yes)
//   node native/xdp-probe.mjs multiarch the include directory of asm/types.h for clang -target bpf
//
// PIAS_XDP=0 in the environment forces "no" (to build and test the stub).
// Never fails: any problem is a reason.

import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

function run(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }).trim();
  } catch {
    return null;
  }
}

function multiarch() {
  const m = run("gcc", ["-print-multiarch"]) ?? run("cc", ["-print-multiarch"]) ?? "";
  return m ? `/usr/include/${m}` : "/usr/include";
}

function reason() {
  if (process.env.PIAS_XDP === "0") return "built without it (PIAS_XDP=0 at install)";
  if (process.platform !== "linux") return "AF_XDP is Linux only";
  if (run("clang", ["--version"]) === null) return "clang was not found at install (apt-get install clang llvm), then npm rebuild";
  const headers = [
    ["/usr/include/xdp/xsk.h", "libxdp-dev"],
    ["/usr/include/bpf/libbpf.h", "libbpf-dev"],
    ["/usr/include/linux/if_xdp.h", "linux-libc-dev"],
    [join(multiarch(), "asm", "types.h"), "linux-libc-dev"],
  ];
  for (const [h, pkg] of headers) if (!existsSync(h)) return `${h} was missing at install (apt-get install ${pkg}), then npm rebuild`;
  const dir = mkdtempSync(join(tmpdir(), "pias-xdp-probe-"));
  try {
    writeFileSync(join(dir, "k.c"), '#include <linux/bpf.h>\n#include <bpf/bpf_helpers.h>\nSEC("xdp") int p(struct xdp_md *c) { return XDP_PASS; }\nchar _l[] SEC("license") = "GPL";\n');
    if (run("clang", ["-O2", "-target", "bpf", "-I", multiarch(), "-c", join(dir, "k.c"), "-o", join(dir, "k.o")]) === null) {
      return "clang cannot compile BPF programs here (clang -target bpf failed; install llvm), then npm rebuild";
    }
    writeFileSync(join(dir, "u.c"), "#include <xdp/xsk.h>\nint main(void) { return xsk_umem__delete(0) == 0; }\n");
    if (run("cc", [join(dir, "u.c"), "-o", join(dir, "u"), "-lxdp", "-lbpf"]) === null) {
      return "cannot link against libxdp and libbpf (apt-get install libxdp-dev libbpf-dev), then npm rebuild";
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return "";
}

const what = process.argv[2];
if (what === "multiarch") {
  process.stdout.write(multiarch());
} else {
  // keep the reason safe inside a C string literal and a make command line
  const why = reason().replace(/[^A-Za-z0-9 ,.:;/()+=_-]/g, " ");
  if (what === "reason") process.stdout.write(why);
  else {
    // said once, at install: the rest of the build goes on without AF_XDP
    if (why) process.stderr.write(`pias: the AF_XDP backend (daemon.io: xdp) will be unavailable: ${why}\n`);
    process.stdout.write(why ? "no" : "yes");
  }
}
