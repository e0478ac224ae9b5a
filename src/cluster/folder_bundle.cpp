// Layout: for each file, "<relative path>\n<size in bytes>\n<bytes>".
#include "cluster/folder_bundle.h"

#include <algorithm>
#include <filesystem>
#include <vector>

#include "util/atomic_file.h"
#include "util/error.h"

namespace nt {

namespace fs = std::filesystem;

std::string bundle_folder(const std::string& dir) {
  std::vector<std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) files.push_back(fs::relative(e.path(), dir).generic_string());
  std::sort(files.begin(), files.end());
  std::string out;
  for (const auto& f : files) {
    const std::string bytes = read_file(dir + "/" + f);
    out += f + "\n" + std::to_string(bytes.size()) + "\n" + bytes;
  }
  return out;
}

void unbundle_folder(const std::string& bundle, const std::string& dir) {
  auto bad = [&] { return Error(dir + ": malformed folder bundle"); };
  size_t at = 0;
  while (at < bundle.size()) {
    const size_t name_end = bundle.find('\n', at);
    if (name_end == std::string::npos) throw bad();
    const size_t size_end = bundle.find('\n', name_end + 1);
    if (size_end == std::string::npos) throw bad();
    const fs::path name = bundle.substr(at, name_end - at);
    size_t size = 0;
    try {
      size = std::stoull(bundle.substr(name_end + 1, size_end - name_end - 1));
    } catch (const std::exception&) {
      throw bad();
    }
    if (name.empty() || name.is_absolute() || name.lexically_normal().string().starts_with("..") ||
        size > bundle.size() - size_end - 1)
      throw bad();
    const fs::path path = fs::path(dir) / name;
    make_directories(path.parent_path().string());
    write_file_atomic(path.string(), std::string_view(bundle).substr(size_end + 1, size));
    at = size_end + 1 + size;
  }
}

}  // namespace nt
