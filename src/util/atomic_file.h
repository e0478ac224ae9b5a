#pragma once
// Crash-safe output: every file neurontrace writes goes to "<path>.tmp.<pid>" in the same folder,
// is flushed, and is renamed over <path>, so a reader never sees a partial file under the final name.
#include <string>
#include <string_view>

namespace nt {

void write_file_atomic(const std::string& path, std::string_view contents);

// Reads a whole file; throws nt::Error "<path>: cannot open (<reason>)" when it cannot.
std::string read_file(const std::string& path);

}  // namespace nt
