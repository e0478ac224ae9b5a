#include <filesystem>

#include "commands.h"
#include "util/atomic_file.h"

namespace nt::cli {

void write_output(const std::string& path, const std::string& contents) {
  make_directories(std::filesystem::path(path).parent_path().string());
  write_file_atomic(path, contents);
}

}  // namespace nt::cli
