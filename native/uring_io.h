// A batch of reads or writes on one fd in one system call (io_uring, from
// liburing), each op non-blocking (RWF_NOWAIT: a TUN queue with nothing to
// read completes at once with -EAGAIN instead of waiting).
//
// Built only with liburing (PIAS_HAVE_URING, set by binding.gyp when the
// headers and library are present); without it Init() fails with a reason and
// the caller keeps the readv/write path. Never blocks on an empty device and
// never lets an op outlive the call that submitted it: Run() returns only
// when every op it submitted has completed, so the buffers may move after.

#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <string>

namespace pias {

class UringIo {
 public:
  UringIo() = default;
  ~UringIo();
  UringIo(const UringIo&) = delete;
  UringIo& operator=(const UringIo&) = delete;

  // Sets up a ring of `entries` submission slots; false with *why on failure.
  bool Init(unsigned entries, std::string* why);
  bool ready() const { return ready_; }
  unsigned entries() const { return entries_; }

  // Submits `k` ops (k <= entries()) on `fd` — readv when !write, writev when
  // write — op i over iovs[i * iovPerOp, (i + 1) * iovPerOp); waits for all
  // of them and stores op i's result (bytes or -errno) in res[i]. Returns 0,
  // or -errno when the ring itself failed: then it is shut down (no op it
  // did not complete can run later) and res is undefined.
  int Run(int fd, bool write, const struct iovec* iovs, unsigned iovPerOp, unsigned k, int32_t* res);

  // Tears the ring down (Run then fails until Init again). Idempotent.
  void Shutdown();

  // System calls made (io_uring_enter), for the stats.
  uint64_t calls() const { return calls_; }

 private:
  void* ring_ = nullptr;  // struct io_uring*, opaque so this header needs no liburing
  bool ready_ = false;
  unsigned entries_ = 0;
  uint64_t calls_ = 0;
};

// Whether this build has io_uring (liburing found at install).
bool UringBuilt();

}  // namespace pias
