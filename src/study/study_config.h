#pragma once
// A study as data (JSON): the model, generation settings, what to trace, the baseline prompts, the
// concepts with their prompts, and optionally a steering experiment. Everything but the prompts
// has a default; ../shared/experiments/seed-study.json (the research notes' study) runs as is.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "analysis/consistency.h"
#include "runtime/generator.h"
#include "trace/recorder.h"

namespace nt {

struct StudySteer {
  std::string concept_name;
  std::vector<std::string> prompts;
  int top_n = 3;
  std::string mode = "zero";
  std::optional<HookSite> site;  // none: the first traced site
  std::string positions;  // empty: "generated" when traced, else the first setting
  std::string where = "all";
  std::vector<std::string> concept_words;  // empty: the concept's name
  int controls = 20;
  uint64_t control_seed = 0;
  int max_new_tokens = 0;  // 0: the study's
};

struct StudyConfig {
  std::string path;  // the file it came from
  std::string description;
  std::string model;
  GenerationConfig gen;
  std::vector<TraceSite> sites{HookSite::ResidPost};  // trace.sites; run_study adds each SAE's latents
  std::vector<std::string> saes;  // "saes": SAE folders or files, each traced at its hook point
  std::vector<Positions> positions{Positions::Last, Positions::Generated};
  bool skip_first = false;
  std::vector<std::string> select_words;
  std::string select_regex;
  int select_window = 0;
  AnalysisOptions analysis;
  int overlap_top_n = 10;
  int pages_per_concept = 3;   // neuron pages per concept and site
  int records_per_page = 5;    // texts shown per neuron page
  std::vector<std::string> baseline;  // may be empty when baseline_atlas is given
  // "baseline": {"atlas": DIR}: the tables normalize against the atlas's per-unit mean and std
  // (trace --baseline-atlas), and steering's means are the atlas's; baseline prompts, when also
  // given, still run (their texts in the report).
  std::string baseline_atlas;
  std::vector<std::pair<std::string, std::vector<std::string>>> concepts;  // in file order
  // "atlas": DIR: the tables show each neuron's atlas concept share (trace --atlas), for the words
  // of each concept (its "words", or its name): one list per concept, in the concepts' order.
  std::string atlas;
  std::vector<std::vector<std::string>> concept_words;
  std::optional<StudySteer> steer;
  nlohmann::ordered_json raw;  // the file's JSON, for the report
};

// Throws nt::Error naming the file and the field at fault (unknown keys included, to catch typos).
// What needs the model (sites it fires, trace.per_sample against the sites' neurons) is checked by
// run_study as soon as the model is open (check_analysis_options, NeuronLayout).
StudyConfig load_study_config(const std::string& path);

}  // namespace nt
