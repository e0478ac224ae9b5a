#pragma once
// Neuron pages: for one top neuron of a concept, its selectivity figures and the texts it fires on
// most, each token highlighted by its activation (HTML fragment for the study report), and the
// same records as an OpenAI automated-interpretability NeuronRecord (JSON).
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nt {

struct TokenActivation {
  std::string text;  // the token as decoded text (may be a partial UTF-8 character; repaired on output)
  float activation = 0.0f;
};

// One text (prompt + generation, or the part of it that was recorded) and the neuron's
// activation on each of its tokens.
struct ActivationRecord {
  int prompt_index = 0;
  std::string prompt_group;  // "concept", "baseline", ...
  std::vector<TokenActivation> tokens;
  float max_activation = 0.0f;
};

struct NeuronPage {
  std::string concept_name;
  std::string site;       // "hook_resid_post", "mlp.hook_post"
  std::string positions;  // optional: the position setting the figures come from ("last", "generated")
  int layer = 0, neuron = 0;
  std::string label;      // "F1234" for an SAE feature; empty: L{layer}N{neuron}
  int occurrences = 0;
  int max_occurrences = 0;
  double concept_mean = 0.0;
  std::optional<double> baseline_mean, cohens_d;  // empty without a baseline
  std::optional<double> density;  // fraction of the concept's recorded tokens with the unit active (> 0)
  std::vector<ActivationRecord> top_records;  // best first
};

// An HTML fragment (<section class="neuron-page">...): a header with L{layer}N{neuron} (or the
// label), site, occurrences, concept vs baseline mean, Cohen's d and density, then each record's tokens as <span>s
// coloured by activation (see activation_colour; scale: the largest |activation| on the page)
// with the exact value in the title attribute. Styled by neuron_page_css() (the study report
// includes it); the colours are inline, so the fragment reads without it too.
std::string neuron_page_html(const NeuronPage& page);
// CSS for the classes neuron_page_html uses.
std::string_view neuron_page_css();

// Background colour "#rrggbb" of a token: white at 0, towards orange/red for positive and towards
// blue for negative activations, saturating at |activation| = max_abs (max_abs <= 0: white).
std::string activation_colour(float activation, float max_abs);

// The OpenAI automated-interpretability NeuronRecord layout (neuron_explainer/activations/
// activations.py, FastDataclass JSON with "dataclass_name" tags):
// {"dataclass_name": "NeuronRecord",
//  "neuron_id": {"dataclass_name": "NeuronId", "layer_index": L, "neuron_index": N},
//  "random_sample": [], "random_sample_by_quantile": null, "quantile_boundaries": null,
//  "mean": m, "variance": v, "skewness": s, "kurtosis": k,
//  "most_positive_activation_records": [{"dataclass_name": "ActivationRecord", "tokens": [...],
//                                        "activations": [...]}, ...]}
// Records are ordered by max_activation, highest first. The moments are computed over every token
// of the page's records (not a random sample of a corpus, as in OpenAI's datasets); kurtosis is
// the excess kurtosis; a moment that cannot be computed (too few tokens, zero variance) is null.
nlohmann::json neuron_record_json(const NeuronPage& page);

// HTML-escapes & < > " ' and repairs invalid UTF-8 (U+FFFD): safe in text and attribute values.
std::string html_escape(std::string_view text);

}  // namespace nt
