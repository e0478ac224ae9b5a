// Library option names (nt::OptionError) rewritten to the flags of the command that set them.
#include "commands.h"
#include "util/option_error.h"

namespace nt::cli {

namespace {

const FlagNames kGenerationFlags = {{"generation.max_new_tokens", "--max-new-tokens"},
                                    {"generation.temperature", "--temperature"},
                                    {"generation.top_k", "--top-k"},
                                    {"generation.top_p", "--top-p"}};

const std::string* flag_of(const FlagNames& flags, const std::string& option) {
  for (const auto& [name, flag] : flags)
    if (name == option) return &flag;
  return nullptr;
}

}  // namespace

Runner naming_flags(FlagNames flags, Runner run) {
  return [flags = std::move(flags), run = std::move(run)] {
    try {
      return run();
    } catch (const OptionError& e) {
      const std::string* flag = flag_of(flags, e.option);
      if (!flag) flag = flag_of(kGenerationFlags, e.option);
      if (!flag) throw;
      throw Error(*flag + ": " + e.problem);
    }
  };
}

}  // namespace nt::cli
