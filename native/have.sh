#!/bin/sh
# Prints 1 when this machine can build against an optional library, else 0,
# for binding.gyp's conditions: `npm install` must never fail for its lack.
#   have.sh uring   liburing (io_uring batches)
#   have.sh bpf     libbpf (loading the TUN steering program)
#   have.sh clang   clang that targets BPF (compiling the steering program)
CC=${CC:-cc}
tmp=$(mktemp -d 2>/dev/null || echo /tmp/pias-have.$$)
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT
case "$1" in
  uring)
    printf '#include <liburing.h>\nint main(void){struct io_uring r;return io_uring_queue_init(2,&r,0);}\n' >"$tmp/t.c"
    $CC "$tmp/t.c" -o "$tmp/t" -luring >/dev/null 2>&1 && echo 1 || echo 0 ;;
  bpf)
    printf '#include <bpf/libbpf.h>\nint main(void){return bpf_object__open_file("x",0)!=0;}\n' >"$tmp/t.c"
    $CC "$tmp/t.c" -o "$tmp/t" -lbpf >/dev/null 2>&1 && echo 1 || echo 0 ;;
  clang)
    printf 'int f(void){return 0;}\n' >"$tmp/t.c"
    clang -O2 -target bpf -c "$tmp/t.c" -o "$tmp/t.o" >/dev/null 2>&1 && echo 1 || echo 0 ;;
  *) echo 0 ;;
esac
