#pragma once
// `neurontrace steer` as a library call, run by the CLI and by the Python module: generate with and
// without an intervention on chosen neurons or SAE latents (same seed) and measure the effect
// against random controls.
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "hooks/hook_point.h"
#include "io/model_identity.h"
#include "runtime/session.h"
#include "sae/sae_open.h"
#include "steer/steering.h"

namespace nt {

// The steer command's options, named as its flags are.
struct SteerRunOptions {
  std::vector<std::string> prompts;
  std::string prompts_file;
  std::string ablate;  // neurons
  std::string sae;     // an SAE whose latents are steered instead
  SaeOpenOptions sae_options;
  std::vector<int> latents;
  std::string direction;  // add:S
  std::string baseline;   // --sae --mode mean: prompts whose tokens give each latent's mean
  std::string site;       // default hook_resid_post, or the trace's site
  std::string mode = "zero";
  bool mode_given = false;  // --mode was given (it excludes --direction)
  std::string where = "all";
  std::string from_trace, trace_positions;
  int top = 0;
  std::vector<std::string> concept_words;
  int controls = 20;
  uint64_t control_seed = 0;
  GenerationConfig gen;
};

// The options parsed and checked as far as they can be without the model.
struct SteerPlan {
  std::vector<std::string> texts;  // --prompt then --prompts FILE
  SteeringOptions steering;        // still without what needs the model (SAE, means, trace's neurons)
  std::optional<HookSite> site;    // --site
};

// Throws nt::Error for what is wrong before loading a model.
SteerPlan plan_steer(const SteerRunOptions& options);
// Opens the SAE (or reads the trace's neurons), checks the rest against the model, then generates
// with and without the intervention and runs the controls.
SteeringResult run_steer(Session& session, const SteerRunOptions& options, SteerPlan plan);
// `steer --json`: the result with the model's identity and the concept words.
nlohmann::json steer_json(const SteeringResult& result, const ModelIdentity& id, const SteerRunOptions& options);

}  // namespace nt
