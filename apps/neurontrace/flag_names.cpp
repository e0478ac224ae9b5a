// Library option names (nt::OptionError) rewritten to the flags of the command that set them.
#include "commands.h"
#include "util/option_error.h"

namespace nt::cli {

namespace {

const FlagNames kGenerationFlags = {{"generation.max_new_tokens", "--max-new-tokens"},
                                    {"generation.temperature", "--temperature"},
                                    {"generation.top_k", "--top-k"},
                                    {"generation.top_p", "--top-p"}};

// Known to every command: options of the SAE loader (sae/sae_open.h).
const FlagNames kSaeFlags = {{"sae.norm_scaling_factor", "--sae-scale"}};

const std::string* flag_of(const FlagNames& flags, const std::string& option) {
  for (const auto& [name, flag] : flags)
    if (name == option) return &flag;
  return nullptr;
}

}  // namespace

void add_sae_flags(CLI::App& cmd, SaeOpenOptions& options) {
  cmd.add_flag("--sae-center", options.center_input,
               "Centre the SAE's input over d_model (SAEs trained on TransformerLens' center_writing_weights "
               "GPT-2; known releases and cfg.json saying so need no flag)");
  cmd.add_option_function<double>(
      "--sae-scale", [&options](double f) { options.norm_scaling_factor = f; },
      "The SAE release's norm_scaling_factor (normalize_activations expected_average_only_in)");
}

CLI::Option* add_words_option(CLI::App& cmd, std::vector<std::string>& words) {
  return cmd.add_option("--words", words,
                        "Concept words (comma-separated; whole words, case-insensitive, near the context's token)")
      ->delimiter(',');
}

Runner naming_flags(FlagNames flags, Runner run) {
  return [flags = std::move(flags), run = std::move(run)] {
    try {
      return run();
    } catch (const OptionError& e) {
      const std::string* flag = flag_of(flags, e.option);
      if (!flag) flag = flag_of(kGenerationFlags, e.option);
      if (!flag) flag = flag_of(kSaeFlags, e.option);
      if (!flag) throw;
      throw Error(*flag + ": " + e.problem);
    }
  };
}

}  // namespace nt::cli
