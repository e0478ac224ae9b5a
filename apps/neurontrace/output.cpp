#include <filesystem>

#include "commands.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace nt::cli {

void write_output(const std::string& path, const std::string& contents) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  if (ec) throw Error(parent.string() + ": cannot create folder (" + ec.message() + ")");
  write_file_atomic(path, contents);
}

}  // namespace nt::cli
