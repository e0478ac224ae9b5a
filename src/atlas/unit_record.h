#pragma once
// One unit of an atlas as JSON, in the OpenAI neuron-explainer NeuronRecord layout
// (neuron_explainer/activations/activations.py) plus neurontrace's fields:
//   neuron_id {layer_index, neuron_index}, most_positive_activation_records (the top contexts, best
//   first), random_sample (the hash-chosen sample), random_sample_by_quantile (that sample split
//   by quantile_boundaries into quantile intervals), quantile_boundaries (the activation at
//   quantiles kQuantiles of every scanned token, from the histogram, interpolated in a bin),
//   mean, variance, skewness, kurtosis (excess), and: site, count, min, max, density
//   {above_zero, above_threshold, threshold}, histogram {edges, counts} of the non-empty bins.
// Each ActivationRecord holds the whole window the model saw: tokens as text, one activation per
// token, and document (corpus index), position (in the document) and index (in the window) of
// the token the record stands for.
#include <nlohmann/json.hpp>
#include <vector>

#include "atlas/atlas_state.h"
#include "tokenizer/tokenizer.h"

namespace nt {

inline const std::vector<double> kQuantiles{0.0, 0.5, 0.9, 0.99, 0.999, 1.0};

std::vector<double> quantile_boundaries(const AtlasState& state, size_t unit);
nlohmann::json unit_record_json(const AtlasState& state, size_t unit, const Tokenizer& tokenizer);
nlohmann::json activation_record_json(const ContextRecord& r, const Tokenizer& tokenizer);

}  // namespace nt
