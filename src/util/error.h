#pragma once
// One error type for everything the user can get wrong (bad files, bad flags, bad specs).
// The message is one line and names the file, tensor or option at fault; the CLI prints it
// after "neurontrace: error: " and exits non-zero.
#include <stdexcept>
#include <string>

namespace nt {

struct Error : std::runtime_error {
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace nt
