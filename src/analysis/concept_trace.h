#pragma once
// `neurontrace trace` as a library call, run by the CLI and by the Python module: generate from a
// concept's prompts (and the baseline's), record the traced sites at every position setting,
// normalize against the baseline, rank, and count how consistently each neuron is in a sample's top K.
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/consistency.h"
#include "analysis/sae_fit.h"
#include "runtime/generator.h"
#include "runtime/session.h"
#include "trace/token_selector.h"
#include "trace/trace_run.h"

namespace nt {

// The trace command's options, named as its flags are.
struct ConceptTraceOptions {
  std::string concept_name = "concept";
  std::vector<std::string> prompts;
  std::vector<std::string> baseline;             // empty: no baseline
  std::string prompts_file, baseline_file;       // where the prompts came from (trace.json's config)
  std::string baseline_atlas;  // atlas folder whose per-unit mean and std replace baseline prompts
  std::string atlas;           // atlas folder whose concept shares of the reported neurons the tables show
  std::vector<std::string> words;  // the concept's words for those shares (atlas/concept_query.h)
  std::vector<std::string> sites;  // none: hook_resid_post, or only the SAEs' latents when saes are given
  std::vector<std::string> saes;   // SAE paths or Hub ids (--sae), traced at their hook points
  std::vector<std::string> positions{"generated"};
  bool skip_first = false;
  std::vector<std::string> select_words;
  std::string select_regex;
  int select_window = 0;
  std::string normalize = "subtract", rank_by = "mean";
  int per_sample = 10;
  int rows = 0;  // 0: per_sample
  double std_floor = 0.0;
  bool keep_rows = false;  // keep every recorded token's activations (--dump-activations)
  GenerationConfig gen;
};

// The options parsed and checked as far as they can be without the model.
struct ConceptTracePlan {
  std::vector<std::string> site_names;  // sites as named, the default filled in
  std::vector<Positions> settings;
  AnalysisOptions analysis;
  std::unique_ptr<TokenSelector> selector;  // null: every token
  nlohmann::json config;                    // trace.json's "config"
};

struct ConceptTrace {
  TraceRun run;
  std::vector<ConceptAnalysis> analyses;  // one per position setting
  std::vector<SiteFit> sae_fits;          // one per traced SAE (analysis/sae_fit.h)
};

// Throws nt::Error (nt::OptionError for a bad value) for what is wrong before loading a model.
ConceptTracePlan plan_concept_trace(const ConceptTraceOptions& options);
// Opens the SAEs and checks the rest against the model, then generates, records, analyzes and
// measures each SAE's fit on the run's tokens. `hooks` may carry
// interventions that run before the recorder.
ConceptTrace run_concept_trace(Session& session, const ConceptTraceOptions& options, const ConceptTracePlan& plan,
                               Hooks* hooks = nullptr, std::function<void(const GenerationProgress&)> progress = {});

}  // namespace nt
