#pragma once
// Shared by the libFuzzer targets: a per-process scratch folder in memory, file writing, and the
// rule that nt::Error is an expected outcome while any other exception is a bug.
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>

#include "util/error.h"

namespace nt::fuzz {

// /dev/shm/nt-fuzz-<target>-<pid>/ (or the same under $TMPDIR), removed when the process exits
// normally. A crashing run leaves it behind; scripts/fuzz.sh removes those.
class ScratchDir {
 public:
  explicit ScratchDir(const char* target) {
    namespace fs = std::filesystem;
    fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
    path_ = (base / (std::string("nt-fuzz-") + target + "-" + std::to_string(::getpid()))).string();
    std::error_code ec;
    fs::remove_all(path_, ec);
    fs::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline void write_bytes(const std::string& path, std::string_view bytes) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {  // the folder was removed under us: make it again
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  }
  if (fd < 0) {
    std::perror(path.c_str());
    std::abort();
  }
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (n <= 0) {
      std::perror(path.c_str());
      std::abort();
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

inline void remove_file(const std::string& path) { ::unlink(path.c_str()); }

// A broken invariant: print it and abort, which libFuzzer reports as a crash with the input.
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what.c_str());
  std::abort();
}

// Runs `fn`; nt::Error (bad input, reported properly) is fine, anything else aborts with its
// message so libFuzzer records the input.
template <typename Fn>
void expect_only_nt_errors(Fn&& fn) {
  try {
    fn();
  } catch (const nt::Error& e) {
    // expected: the input was rejected with a proper message (NT_FUZZ_VERBOSE=1 prints it)
    static const bool verbose = std::getenv("NT_FUZZ_VERBOSE") != nullptr;
    if (verbose) std::fprintf(stderr, "nt::Error: %s\n", e.what());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "unexpected exception (not nt::Error): %s\n", e.what());
    std::abort();
  } catch (...) {
    std::fprintf(stderr, "unexpected non-std exception\n");
    std::abort();
  }
}

}  // namespace nt::fuzz
