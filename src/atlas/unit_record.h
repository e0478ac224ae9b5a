#pragma once
// One unit of an atlas as JSON, in the OpenAI neuron-explainer NeuronRecord layout
// (neuron_explainer/activations/activations.py) plus neurontrace's fields:
//   neuron_id {layer_index, neuron_index}, most_positive_activation_records (the top contexts, best
//   first), random_sample_by_quantile (the hash-chosen sample split by quantile_boundaries into
//   quantile intervals; random_sample is left empty, as every sample is in one interval), quantile_boundaries (the activation at
//   quantiles kQuantiles of every scanned token, from the histogram, interpolated in a bin),
//   mean, variance, skewness, kurtosis (excess), and: site, count, min, max, density
//   {above_zero, above_threshold, threshold}, histogram {bins: [lower, upper, count] of the non-empty
//   bins}, logit_effects {top, bottom: [token text, logit] x 10} (logit_effects.h) or null.
// Each ActivationRecord holds the whole window the model saw: tokens as text, one activation per
// token, and document (corpus index), position (in the document) and index (in the window) of
// the token the record stands for.
#include <nlohmann/json.hpp>
#include <vector>

#include "atlas/atlas_state.h"
#include "atlas/logit_effects.h"
#include "tokenizer/tokenizer.h"

namespace nt {

inline const std::vector<double> kQuantiles{0.0, 0.5, 0.9, 0.99, 0.999, 1.0};

std::vector<double> quantile_boundaries(const AtlasState& state, size_t unit);

// Writes unit records as JSON text. Records are most of an atlas's bytes (a window of tokens and
// activations each), so their JSON is put together from each token's text escaped once; a window
// where a character is split over tokens gets its texts repaired first (report/base64.h).
// The bytes of token `i` of `ids`, widened over its neighbours to whole UTF-8 characters: a
// token that starts inside a character takes the tokens before it that hold its start, one that
// ends inside a character the tokens after it that complete it (a character spans at most 4).
// How the index, its search words and summary.csv show the token a record stands for.
std::string whole_characters(const std::vector<int32_t>& ids, size_t i, const Tokenizer& tokenizer);

class UnitRecordWriter {
 public:
  explicit UnitRecordWriter(const Tokenizer& tokenizer);
  // `effect` may be empty (logit_effects: null).
  std::string json(const AtlasState& state, size_t unit, const LogitEffect& effect) const;

 private:
  void append_record(std::string& out, const ContextRecord& r) const;
  const Tokenizer& tokenizer_;
  std::vector<std::string> escaped_;  // [vocab] the token's text as a JSON string
  std::vector<char> whole_;           // [vocab] the token's bytes are valid UTF-8 on their own
};

}  // namespace nt
