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

void check_disjoint_parts(const AtlasSettings& a, const std::vector<int>& a_shards, const AtlasSettings& b,
                          const std::vector<int>& b_shards) {
  const std::string diff = a.difference(b);
  if (!diff.empty()) throw Error("parts differ in " + diff);
  for (int s : b_shards)
    if (std::find(a_shards.begin(), a_shards.end(), s) != a_shards.end())
      throw Error("shard " + std::to_string(s) + "/" + std::to_string(a.shard_count) + " is given twice");
}

UnitStatistics AtlasState::statistics(size_t u) const {
  UnitStatistics s{tokens, moments[u], min[u], max[u], positive[u], above[u], {}};
  std::copy_n(histogram.begin() + static_cast<std::ptrdiff_t>(u * kHistogramBins), kHistogramBins, s.histogram.begin());
  return s;
}

void AtlasState::set_statistics(size_t u, const UnitStatistics& s) {
  moments[u] = s.moments;
  min[u] = s.min;
  max[u] = s.max;
  positive[u] = s.positive;
  above[u] = s.above;
  std::copy(s.histogram.begin(), s.histogram.end(), histogram.begin() + static_cast<std::ptrdiff_t>(u * kHistogramBins));
}

void AtlasState::merge_records(size_t u, const std::vector<ContextRecord>& o_top, const std::vector<ContextRecord>& o_samples) {
  const size_t k = static_cast<size_t>(settings.top_k), n_samples = static_cast<size_t>(settings.samples);
  for (const auto& r : o_top) insert_bounded(top[u], ContextRecord(r), k, top_before);
  for (const auto& r : o_samples) insert_bounded(samples[u], ContextRecord(r), n_samples, sample_before);
}

void AtlasState::merge(const AtlasState& o) {
  check_disjoint_parts(settings, shards, o.settings, o.shards);
  for (size_t u = 0; u < layout.total; ++u) {
    UnitStatistics s = statistics(u);
    merge_unit_statistics(s, o.statistics(u));
    set_statistics(u, s);
    merge_records(u, o.top[u], o.samples[u]);
  }
  tokens += o.tokens;
  documents += o.documents;
  shards.insert(shards.end(), o.shards.begin(), o.shards.end());
  std::sort(shards.begin(), shards.end());
}

double AtlasState::density(size_t u) const {
  return static_cast<double>(positive[u]) / static_cast<double>(std::max<int64_t>(1, tokens));
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
