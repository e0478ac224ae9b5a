#pragma once
// trace.json: everything needed to redo the analysis — the configuration, the model's identity,
// prompts with generated ids and texts, per-sample top-K with scores, the consistency tables, and
// per-neuron statistics over tokens for every neuron of the traced sites.
#include <nlohmann/json.hpp>
#include <vector>

#include "analysis/consistency.h"
#include "io/model_identity.h"
#include "trace/trace_run.h"

namespace nt {

nlohmann::json trace_json(const TraceRun& run, const Tokenizer& tokenizer, const ModelIdentity& model,
                          const nlohmann::json& config, const std::vector<ConceptAnalysis>& analyses);

// One concept's tables; the figures against the baseline are null when there was none.
nlohmann::json analysis_json(const ConceptAnalysis& a);

// Reads back the consistency tables of a trace.json: for each (positions, concept, site) the
// neurons in rank order. Used by `steer --from-trace` and the study's overlap analysis.
struct TracedNeurons {
  std::string concept_name;
  std::string positions;
  std::string site;  // "hook_resid_post", "mlp.hook_post"
  std::vector<std::pair<int, int>> neurons;  // (layer, index), best first
};
std::vector<TracedNeurons> traced_neurons(const nlohmann::json& trace);

}  // namespace nt
