#pragma once
// What an atlas keeps of one unit in closed form: the count, moments, extremes, density counts and
// histogram of its activations. Two units' statistics over disjoint token sets merge into those of
// the union (merge_unit_statistics): the one rule both AtlasState::merge and the MPI reduction of
// the ranks' states (atlas_ranks.h) use. Trivially copyable, so it travels as raw bytes.
#include <algorithm>
#include <array>
#include <cstdint>
#include <type_traits>

#include "atlas/histogram_bins.h"
#include "atlas/moments.h"

namespace nt {

struct UnitStatistics {
  int64_t count = 0;  // tokens
  Moments moments;
  float min = 0, max = 0;
  int64_t positive = 0, above = 0;  // tokens > 0, tokens > the settings' threshold
  std::array<int64_t, kHistogramBins> histogram{};
};
static_assert(std::is_trivially_copyable_v<UnitStatistics>);

// `a` becomes the statistics of a's and b's tokens together (a's tokens first: the moments are
// merged in that order, which matters only to rounding).
inline void merge_unit_statistics(UnitStatistics& a, const UnitStatistics& b) {
  merge_moments(a.moments, a.count, b.moments, b.count);
  a.count += b.count;
  a.min = std::min(a.min, b.min);
  a.max = std::max(a.max, b.max);
  a.positive += b.positive;
  a.above += b.above;
  for (size_t i = 0; i < a.histogram.size(); ++i) a.histogram[i] += b.histogram[i];
}

}  // namespace nt
