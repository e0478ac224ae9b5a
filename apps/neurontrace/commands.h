#pragma once
// Each subcommand registers its options on the CLI11 app and returns the function that runs it.
#include <CLI/CLI.hpp>
#include <functional>

#include "runtime/generator.h"

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

// Options shared by every command that generates: -n, --temperature, --top-k, --top-p, --seed,
// --batch. Commands where --top-k means neurons name the sampling one --sample-top-k.
void add_generation_flags(CLI::App& cmd, GenerationConfig& config, const std::string& top_k_flag = "--top-k");

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
