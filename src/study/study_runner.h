#pragma once
// `neurontrace study`: one generation for every prompt of the study (concepts and baseline share
// batches, every position setting is recorded at once), then per concept and setting the
// consistency tables, the concept x concept overlaps with heatmaps, neuron pages, the steering
// experiment when configured, and one self-contained HTML report. Groups are checkpointed as
// they finish, so a killed study resumes where it stopped.
#include <functional>
#include <iosfwd>
#include <string>

#include "runtime/generator.h"

namespace nt {

struct StudyOptions {
  std::string config_path;
  std::string model;    // overrides the config's model when not empty
  std::string out_dir;  // required
  std::function<void(const GenerationProgress&)> progress;
  std::ostream* tables = nullptr;  // where the consistency tables are printed (stdout), or null
  std::ostream* log = nullptr;     // diagnostics (stderr), or null
};

struct StudyOutcome {
  int groups_restored = 0;
  int groups_generated = 0;
  std::string report_path;
};

StudyOutcome run_study(const StudyOptions& options);

}  // namespace nt
