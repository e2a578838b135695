// Loading and attaching the TUN steering program (see steering.h).

#include "steering.h"

#include <cerrno>
#include <cstring>

#ifdef PIAS_HAVE_BPF
#include <bpf/libbpf.h>
#include <linux/if_tun.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#endif

namespace pias {

#ifdef PIAS_HAVE_BPF

namespace {
int Quiet(enum libbpf_print_level, const char*, va_list) { return 0; }  // one line of our own says why
}  // namespace

bool AttachSteering(int fd, const std::string& objPath, const SteerConfig& cfg, std::string* why) {
  struct stat st;
  if (::stat(objPath.c_str(), &st) != 0 || st.st_size == 0) {
    *why = "the steering program was not built (clang or libbpf-dev missing at install: " + objPath + ")";
    return false;
  }
  libbpf_set_print(Quiet);
  struct bpf_object* obj = bpf_object__open_file(objPath.c_str(), nullptr);
  if (obj == nullptr) {
    *why = "cannot open " + objPath + ": " + strerror(errno);
    return false;
  }
  bool ok = false;
  struct bpf_map* rodata = nullptr;
  struct bpf_map* m;
  bpf_object__for_each_map(m, obj) {
    const char* name = bpf_map__name(m);
    if (name != nullptr && std::strstr(name, ".rodata") != nullptr) rodata = m;
  }
  struct bpf_program* prog = bpf_object__find_program_by_name(obj, "steer");
  if (rodata == nullptr || prog == nullptr) {
    *why = objPath + " is not the steering program (no steer() or no .rodata)";
  } else if (bpf_map__set_initial_value(rodata, &cfg, sizeof cfg) != 0) {
    *why = "the steering program's configuration does not fit its .rodata";
  } else if (bpf_object__load(obj) != 0) {
    *why = std::string("the kernel refused to load the steering program: ") + strerror(errno);
  } else {
    int progFd = bpf_program__fd(prog);
    if (::ioctl(fd, TUNSETSTEERINGEBPF, &progFd) != 0) {
      *why = std::string("the kernel refused the steering program (TUNSETSTEERINGEBPF): ") + strerror(errno);
    } else {
      ok = true;  // the device holds its own reference to the program
    }
  }
  bpf_object__close(obj);
  return ok;
}

#else

bool AttachSteering(int, const std::string&, const SteerConfig&, std::string* why) {
  *why = "this build has no libbpf: libbpf-dev was missing at install (apt-get install libbpf-dev clang, then npm rebuild)";
  return false;
}

#endif

}  // namespace pias
