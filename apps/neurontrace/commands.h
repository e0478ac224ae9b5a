#pragma once
// Each subcommand registers its options on the CLI11 app and returns the function that runs it.
#include <CLI/CLI.hpp>
#include <functional>

#include "runtime/generator.h"

namespace nt::cli {

using Runner = std::function<int()>;

Runner add_generate(CLI::App& app);

// Options shared by every command that generates: -n, --temperature, --top-k, --top-p, --seed.
void add_generation_flags(CLI::App& cmd, GenerationConfig& config);

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
