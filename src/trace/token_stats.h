#pragma once
// Streaming statistics over tokens, per neuron: count, sum, sum of squares, sum of |x|, max, min.
// Memory is fixed by the number of neurons, whatever the number of tokens.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nt {

struct SequenceSums;

struct TokenStats {
  int64_t count = 0;
  std::vector<double> sum, sumsq, sumabs;
  std::vector<float> max, min;

  explicit TokenStats(size_t n = 0) { reset(n); }
  void reset(size_t n);
  size_t size() const { return sum.size(); }
  // Adds one token's activations x[0..width) for neurons offset..offset+width (count is the
  // caller's to keep).
  void add(size_t offset, const float* x, int width);
  // The same for sumsq and min only (the recorder keeps sum, sumabs and max per sequence, in
  // SequenceSums, and adds these straight into the sequence's group).
  void add_spread(size_t offset, const float* x, int width);
  void merge(const TokenStats& other);
  void merge_sums(const SequenceSums& other);  // count, sum, sumabs, max
  double mean(size_t i) const { return count ? sum[i] / count : 0.0; }
  double mean_abs(size_t i) const { return count ? sumabs[i] / count : 0.0; }
  // Population standard deviation over tokens.
  double std(size_t i) const;
};

// What the recorder keeps per sequence while it runs: count, sum, sum of |x| and max (20 bytes per
// neuron; sumsq and min go straight into the sequence's group). Same accumulation as TokenStats.
struct SequenceSums {
  int64_t count = 0;
  std::vector<double> sum, sumabs;
  std::vector<float> max;

  explicit SequenceSums(size_t n = 0);
  size_t size() const { return sum.size(); }
  void add(size_t offset, const float* x, int width);
  double mean(size_t i) const { return count ? sum[i] / count : 0.0; }
  double mean_abs(size_t i) const { return count ? sumabs[i] / count : 0.0; }
};

}  // namespace nt
