#pragma once
// Crash-safe output: every file neurontrace writes goes to "<path>.tmp.<pid>" in the same folder,
// is flushed, and is renamed over <path>, so a reader never sees a partial file under the final name.
// A write that fails (a full disk: ENOSPC on write, fsync or close) throws nt::Error naming
// <path>, removes the temporary file and leaves any earlier file under <path> as it was.
#include <string>
#include <string_view>

namespace nt {

void write_file_atomic(const std::string& path, std::string_view contents);

// Creates `dir` and its missing parents; throws nt::Error "<dir>: cannot create folder (<reason>)"
// (e.g. when a part of it is a regular file) instead of std::filesystem's exception.
void make_directories(const std::string& dir);

// Reads a whole file; throws nt::Error "<path>: cannot open (<reason>)" when it cannot.
std::string read_file(const std::string& path);

}  // namespace nt
