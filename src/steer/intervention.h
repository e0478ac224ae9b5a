#pragma once
// Interventions: rewrite chosen neurons of one site while the model runs.
//   modes: zero (the notes' "turn off"), mean (replace with the baseline mean from a trace),
//          scale:F, set:V, add:V
//   where: all positions (default), prompt only, generated only
//   neurons: "L11N197,L11N373" or "11:197,11:373"
#include <string>
#include <utility>
#include <vector>

#include "hooks/hooks.h"
#include "io/model_config.h"

namespace nt {

enum class InterventionMode { Zero, Mean, Scale, Set, Add };
enum class InterventionWhere { All, Prompt, Generated };

struct Neuron {
  int layer = 0;
  int index = 0;
  bool operator==(const Neuron&) const = default;
  bool operator<(const Neuron& o) const { return layer < o.layer || (layer == o.layer && index < o.index); }
};

struct Intervention {
  HookSite site = HookSite::ResidPost;
  std::vector<Neuron> neurons;
  InterventionMode mode = InterventionMode::Zero;
  float value = 0.0f;          // scale factor, set value, or added value
  std::vector<float> means;    // mode mean: the value for each neuron
  InterventionWhere where = InterventionWhere::All;
  // Sequences it applies to; empty: every sequence. (Lets one batch carry several variants.)
  std::vector<int> only_seqs;

  std::string describe() const;  // "zero hook_resid_post L11N197,L11N373 (all positions)"
};

std::string mode_text(InterventionMode mode, float value);    // "zero", "scale:0.500000", ...
const char* where_text(InterventionWhere where);              // "all positions", "prompt positions", ...

std::vector<Neuron> parse_neurons(const std::string& text);  // throws nt::Error on malformed specs
void parse_mode(const std::string& text, Intervention& out);  // "zero", "scale:0.5", ...
InterventionWhere parse_where(const std::string& text);        // all | prompt | generated
std::string neurons_text(const std::vector<Neuron>& neurons);  // "L11N197,L11N373"

// Checks layers and indices against the model; throws nt::Error naming the offending neuron.
void validate(const Intervention& iv, const ModelConfig& config);

// Registers the hooks that apply `iv`.
void add_intervention(Hooks& hooks, const Intervention& iv);

}  // namespace nt
