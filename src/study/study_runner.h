#pragma once
// `neurontrace study`: one generation for every prompt of the study (concepts and baseline share
// batches, every position setting is recorded at once), then per concept and setting the
// consistency tables, the concept x concept overlaps with heatmaps, neuron pages, the steering
// experiment when configured, and one self-contained HTML report. Groups are checkpointed as
// they finish, so a killed study resumes where it stopped.
#include <functional>
#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include "cluster/shard.h"
#include "runtime/generator.h"

namespace nt {

struct StudyOptions {
  std::string config_path;
  std::string model;    // overrides the config's model when not empty
  std::string out_dir;  // required
  std::string atlas;           // overrides the config's "atlas" when not empty (--atlas)
  std::string baseline_atlas;  // overrides the config's "baseline": {"atlas"} when not empty (--baseline-atlas)
  std::function<void(const GenerationProgress&)> progress;
  std::ostream* tables = nullptr;  // where the consistency tables are printed (stdout), or null
  std::ostream* log = nullptr;     // diagnostics (stderr), or null
  // Set: generate only this shard's prompt groups into out_dir and write its part
  // (study/study_part.h); `study merge` makes the report from all parts.
  std::optional<Shard> shard;
  // Every prompt group must come from its checkpoint (merging parts): a missing one is an error.
  bool restore_only = false;
};

struct StudyOutcome {
  int groups_restored = 0;
  int groups_generated = 0;
  std::string report_path;
};

StudyOutcome run_study(const StudyOptions& options);

// `study merge`: the report of the study whose parts are in `part_dirs` (every shard once, same
// study, model and settings, else nt::Error naming the parts), written to options.out_dir exactly
// as one process would have; the config and model are the parts'. options.config_path and
// options.model are not used.
StudyOutcome merge_study(const std::vector<std::string>& part_dirs, StudyOptions options);

// Under mpirun -np N: rank R runs shard R/N into <out>/ranks/part-R, the parts are gathered to
// rank 0, which merges them into <out>. Without mpirun: run_study. Only rank 0's outcome has a report.
StudyOutcome run_study_on_ranks(const StudyOptions& options);

}  // namespace nt
