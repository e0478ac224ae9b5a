#pragma once
// Each subcommand registers its options on the CLI11 app and returns the function that runs it.
#include <CLI/CLI.hpp>
#include <functional>

#include "runtime/generator.h"
#include "sae/sae_open.h"

namespace nt::cli {

using Runner = std::function<int()>;
struct Command {
  CLI::App* app;
  Runner run;
};

Command add_generate(CLI::App& app);
Command add_trace(CLI::App& app);
Command add_steer(CLI::App& app);
Command add_study(CLI::App& app);
Command add_atlas(CLI::App& app);

// Options shared by every command that generates: -n, --temperature, --top-k, --top-p, --seed,
// --batch (sampling; the same names as the study config's "generation").
void add_generation_flags(CLI::App& cmd, GenerationConfig& config);

// Options of every command that opens an SAE (sae/sae_open.h): --sae-center, --sae-scale F.
void add_sae_flags(CLI::App& cmd, SaeOpenOptions& options);

// --words W1,W2,...: a concept's words (atlas/concept_query.h says how they match), for
// atlas query and trace --atlas.
CLI::Option* add_words_option(CLI::App& cmd, std::vector<std::string>& words);

// The library names a bad option as the study config does ("trace.per_sample"); a command lists
// its flags for those names. The returned runner rethrows such an nt::OptionError naming the flag
// ("--per-sample: must be positive"); the generation flags are known to every command.
using FlagNames = std::vector<std::pair<std::string, std::string>>;  // option name, flag
Runner naming_flags(FlagNames flags, Runner run);

// Writes `contents` to `path` atomically; creates the folder first.
void write_output(const std::string& path, const std::string& contents);

// Progress line on stderr when it is a terminal; silent otherwise.
class Progress {
 public:
  explicit Progress(std::string label);
  ~Progress();
  void update(const GenerationProgress& p);

 private:
  std::string label_;
  bool enabled_;
  double start_;
};

}  // namespace nt::cli
