#pragma once
// A folder's files as one byte string, to send a process's state to another (MPI gather) and
// write it back there: a shard's checkpoints travel this way to the rank that merges them.
#include <string>

namespace nt {

// Every regular file under `dir` (recursively), by relative path in sorted order.
std::string bundle_folder(const std::string& dir);

// Writes the files of `bundle` under `dir`, each atomically; throws nt::Error naming `dir` when
// the bundle is malformed.
void unbundle_folder(const std::string& bundle, const std::string& dir);

}  // namespace nt
