#pragma once
// Steering results as JSON (for `steer --json` and the study's steering.json).
#include <nlohmann/json.hpp>
#include <optional>

#include "steer/steering.h"

namespace nt {

nlohmann::json steering_json(const SteeringResult& r);
nlohmann::json measures_json(const EffectMeasures& m);

// The traced neurons a steering run takes from a trace.json: the top `n` rows of the table for
// `site` (none: the first traced site) and `positions` (empty: the first setting). When the trace
// has a baseline, `site_means` receives its per-neuron means for that site, for mode mean.
// Throws nt::Error when the file is not a trace, the site is not in it, or it was made with
// another model (the message names both).
struct TraceSelection {
  HookSite site;
  std::vector<Neuron> neurons;
  std::vector<float> site_means;
};
TraceSelection select_from_trace(const std::string& trace_path, const nlohmann::json& current_model,
                                 std::optional<HookSite> site, const std::string& positions, int n);

}  // namespace nt
