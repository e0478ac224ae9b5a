#pragma once
// Prompt files as the research notes write them: {"prompts": ["...", ...]}; a bare JSON array of
// strings is accepted too.
#include <string>
#include <vector>

namespace nt {

// Throws nt::Error naming the file when it is missing, not JSON, not of that shape, or empty.
std::vector<std::string> load_prompts(const std::string& path);

}  // namespace nt
