// neurontrace study CONFIG --out DIR: the whole experiment from one config file.
#include <unistd.h>

#include <iostream>

#include "commands.h"
#include "study/study_runner.h"

namespace nt::cli {

namespace {

struct StudyCliOptions {
  std::string config, model, out;
  bool quiet = false;
};

int run_study_command(const StudyCliOptions& o) {
  Progress progress("study");
  StudyOptions so;
  so.config_path = o.config;
  so.model = o.model;
  so.out_dir = o.out;
  so.progress = [&](const GenerationProgress& p) { progress.update(p); };
  so.tables = o.quiet ? nullptr : &std::cout;
  so.log = &std::cerr;
  StudyOutcome r = run_study(so);
  if (::isatty(2)) std::cerr << "neurontrace: report written to " << r.report_path << "\n";
  return 0;
}

}  // namespace

Command add_study(CLI::App& app) {
  auto o = std::make_shared<StudyCliOptions>();
  CLI::App* cmd = app.add_subcommand("study", "Run a whole study (traces, overlaps, neuron pages, steering, report) from a config");
  cmd->add_option("config", o->config, "Study config (JSON)")->required();
  cmd->add_option("-m,--model", o->model, "Model folder or name (overrides the config's \"model\")");
  cmd->add_option("--out", o->out, "Output folder (re-run with the same folder to resume)")->required();
  cmd->add_flag("-q,--quiet", o->quiet, "Do not print the consistency tables");
  return {cmd, [o] { return run_study_command(*o); }};
}

}  // namespace nt::cli
