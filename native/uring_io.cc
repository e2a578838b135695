// Batches of non-blocking reads/writes in one io_uring_enter (see uring_io.h).

#include "uring_io.h"

#include <cerrno>
#include <cstring>

#ifdef PIAS_HAVE_URING
#include <liburing.h>
#ifndef RWF_NOWAIT
#define RWF_NOWAIT 0x00000008
#endif
#endif

namespace pias {

#ifdef PIAS_HAVE_URING

bool UringBuilt() { return true; }

UringIo::~UringIo() { Shutdown(); }

void UringIo::Shutdown() {
  if (ring_ == nullptr) return;
  auto* ring = static_cast<struct io_uring*>(ring_);
  io_uring_queue_exit(ring);
  delete ring;
  ring_ = nullptr;
  ready_ = false;
}

bool UringIo::Init(unsigned entries, std::string* why) {
  if (ready_) return true;
  auto* ring = new struct io_uring;
  std::memset(ring, 0, sizeof *ring);
  int rc = io_uring_queue_init(entries, ring, 0);
  if (rc < 0) {
    delete ring;
    *why = std::string("io_uring_queue_init: ") + strerror(-rc);
    return false;
  }
  ring_ = ring;
  ready_ = true;
  entries_ = ring->sq.ring_entries;
  return true;
}

int UringIo::Run(int fd, bool write, const struct iovec* iovs, unsigned iovPerOp, unsigned k, int32_t* res) {
  if (!ready_ || k > entries_) return -EINVAL;
  auto* ring = static_cast<struct io_uring*>(ring_);
  for (unsigned i = 0; i < k; i++) {
    struct io_uring_sqe* sqe = io_uring_get_sqe(ring);
    if (sqe == nullptr) {  // cannot happen (k <= entries, the ring is drained after each Run): never leave half a batch queued
      Shutdown();
      return -EBUSY;
    }
    if (write) {
      io_uring_prep_writev2(sqe, fd, iovs + i * iovPerOp, iovPerOp, 0, RWF_NOWAIT);
    } else {
      io_uring_prep_readv2(sqe, fd, iovs + i * iovPerOp, iovPerOp, 0, RWF_NOWAIT);
    }
    io_uring_sqe_set_data64(sqe, i);
  }
  int rc, tries = 0;
  do {
    rc = io_uring_submit_and_wait(ring, k);
    calls_++;
  } while (rc < 0 && (rc == -EINTR || rc == -EAGAIN) && io_uring_sq_ready(ring) > 0 && ++tries < 100);
  if (rc < 0 && io_uring_sq_ready(ring) > 0) {
    // ops left in the submission queue would run later, into buffers that
    // may have moved: tear the ring down (the caller falls back to readv)
    Shutdown();
    return rc;
  }
  for (unsigned done = 0; done < k;) {
    struct io_uring_cqe* cqe = nullptr;
    rc = io_uring_peek_cqe(ring, &cqe);
    if (rc == -EAGAIN) {
      rc = io_uring_wait_cqe(ring, &cqe);
      calls_++;
    }
    if (rc == -EINTR) continue;
    if (rc < 0) {
      Shutdown();
      return rc;
    }
    uint64_t i = io_uring_cqe_get_data64(cqe);
    if (i < k) res[i] = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    done++;
  }
  return 0;
}

#else

bool UringBuilt() { return false; }

UringIo::~UringIo() = default;

void UringIo::Shutdown() {}

bool UringIo::Init(unsigned, std::string* why) {
  *why = "this build has no io_uring: liburing-dev was missing at install (apt-get install liburing-dev, then npm rebuild)";
  return false;
}

int UringIo::Run(int, bool, const struct iovec*, unsigned, unsigned, int32_t*) { return -ENOSYS; }

#endif

}  // namespace pias
