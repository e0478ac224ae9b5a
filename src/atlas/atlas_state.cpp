#include "atlas/atlas_state.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "atlas/histogram_bins.h"
#include "util/error.h"

namespace nt {

AtlasState::AtlasState(AtlasSettings s, NeuronLayout l)
    : settings(std::move(s)),
      layout(std::move(l)),
      shards{settings.shard_index},
      moments(layout.total),
      min(layout.total, std::numeric_limits<float>::infinity()),
      max(layout.total, -std::numeric_limits<float>::infinity()),
      positive(layout.total, 0),
      above(layout.total, 0),
      histogram(layout.total * kHistogramBins, 0),
      top(layout.total),
      samples(layout.total) {}

void AtlasState::merge(const AtlasState& o) {
  const std::string diff = settings.difference(o.settings);
  if (!diff.empty()) throw Error("parts differ in " + diff);
  for (int s : o.shards)
    if (std::find(shards.begin(), shards.end(), s) != shards.end())
      throw Error("shard " + std::to_string(s) + "/" + std::to_string(settings.shard_count) + " is given twice");
  const size_t k = static_cast<size_t>(settings.top_k), n_samples = static_cast<size_t>(settings.samples);
  for (size_t u = 0; u < layout.total; ++u) {
    merge_moments(moments[u], tokens, o.moments[u], o.tokens);
    min[u] = std::min(min[u], o.min[u]);
    max[u] = std::max(max[u], o.max[u]);
    positive[u] += o.positive[u];
    above[u] += o.above[u];
    for (const auto& r : o.top[u]) insert_bounded(top[u], ContextRecord(r), k, top_before);
    for (const auto& r : o.samples[u]) insert_bounded(samples[u], ContextRecord(r), n_samples, sample_before);
  }
  for (size_t i = 0; i < histogram.size(); ++i) histogram[i] += o.histogram[i];
  tokens += o.tokens;
  documents += o.documents;
  shards.insert(shards.end(), o.shards.begin(), o.shards.end());
  std::sort(shards.begin(), shards.end());
}

double AtlasState::variance(size_t u) const { return tokens > 0 ? moments[u].m2 / static_cast<double>(tokens) : 0.0; }

double AtlasState::skewness(size_t u) const {
  const double v = variance(u);
  return v > 0 ? moments[u].m3 / static_cast<double>(tokens) / std::pow(v, 1.5) : 0.0;
}

double AtlasState::kurtosis(size_t u) const {
  const double v = variance(u);
  return v > 0 ? moments[u].m4 / static_cast<double>(tokens) / (v * v) - 3.0 : 0.0;
}

}  // namespace nt
