// neurontrace study CONFIG --out DIR: the whole experiment from one config file; with --shard I/N
// one share of its prompts (a Slurm array task), merged by `study merge`; under mpirun, split over
// the ranks and merged on rank 0.
#include <unistd.h>

#include <iostream>

#include "cluster/ranks.h"
#include "commands.h"
#include "study/study_runner.h"
#include "util/error.h"

namespace nt::cli {

namespace {

struct StudyCliOptions {
  std::string config, model, out, shard, atlas, baseline_atlas;
  std::vector<std::string> parts;
  std::string merge_out;
  bool quiet = false;
  CLI::App* merge = nullptr;
};

StudyOptions study_options(const StudyCliOptions& o, Progress& progress) {
  StudyOptions so;
  so.config_path = o.config;
  so.model = o.model;
  so.out_dir = o.out;
  so.atlas = o.atlas;
  so.baseline_atlas = o.baseline_atlas;
  so.progress = [&](const GenerationProgress& p) { progress.update(p); };
  so.tables = o.quiet ? nullptr : &std::cout;
  so.log = &std::cerr;
  return so;
}

int run_study_command(const StudyCliOptions& o) {
  Progress progress("study");
  StudyOptions so = study_options(o, progress);
  if (o.merge->parsed()) {
    so.out_dir = o.merge_out;
    StudyOutcome r = merge_study(o.parts, so);
    if (::isatty(2)) std::cerr << "neurontrace: report written to " << r.report_path << "\n";
    return 0;
  }
  if (o.config.empty()) throw Error("study needs a CONFIG (or: study merge PART... --out DIR)");
  if (o.out.empty()) throw Error("study needs --out DIR");
  if (!o.shard.empty()) {
    if (rank_count() > 1) throw Error("--shard: not under mpirun (the ranks already split the study)");
    so.shard = parse_shard(o.shard);
    run_study(so);
    if (::isatty(2)) std::cerr << "neurontrace: shard " << so.shard->text() << " written to " << o.out << "\n";
    return 0;
  }
  StudyOutcome r = run_study_on_ranks(so);
  if (::isatty(2) && rank_index() == 0) std::cerr << "neurontrace: report written to " << r.report_path << "\n";
  return 0;
}

// --atlas and --baseline-atlas, overriding the config's "atlas" and "baseline": {"atlas"}.
void add_study_atlas_flags(CLI::App& cmd, StudyCliOptions& o) {
  cmd.add_option("--atlas", o.atlas,
                 "Atlas folder: the tables show each neuron's concept share, for each concept's \"words\" (default: "
                 "its name); overrides the config's \"atlas\"");
  cmd.add_option("--baseline-atlas", o.baseline_atlas,
                 "Atlas folder: the tables normalize against its per-unit token mean and std (the baseline prompts "
                 "still run for steering); overrides the config's \"baseline\": {\"atlas\"}");
}

}  // namespace

Command add_study(CLI::App& app) {
  auto o = std::make_shared<StudyCliOptions>();
  CLI::App* cmd = app.add_subcommand("study", "Run a whole study (traces, overlaps, neuron pages, steering, report) from a config");
  cmd->add_option("config", o->config, "Study config (JSON)");
  cmd->add_option("-m,--model", o->model, "Model folder or name (overrides the config's \"model\")");
  cmd->add_option("--out", o->out, "Output folder (re-run with the same folder to resume)");
  cmd->add_option("--shard", o->shard,
                  "I/N: generate only shard I (from 0) of N of the prompt groups into --out (a part for "
                  "`study merge`)");
  cmd->add_flag("-q,--quiet", o->quiet, "Do not print the consistency tables");
  add_study_atlas_flags(*cmd, *o);
  o->merge = cmd->add_subcommand("merge", "Make the study's report from the parts of `study --shard I/N` runs");
  o->merge->add_option("parts", o->parts, "The parts' folders (every shard once)")->required();
  o->merge->add_option("--out", o->merge_out, "Output folder")->required();
  o->merge->add_flag("-q,--quiet", o->quiet, "Do not print the consistency tables");
  add_study_atlas_flags(*o->merge, *o);
  cmd->require_subcommand(0, 1);
  return {cmd, naming_flags({{"shard", "--shard"}}, [o] { return run_study_command(*o); })};
}

}  // namespace nt::cli
