#pragma once
// Streaming statistics over tokens, per neuron: count, sum, sum of squares, sum of |x|, max, min.
// Memory is fixed by the number of neurons, whatever the number of tokens.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nt {

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
  // The same for some fields only: sum, sumabs and max, or sumsq and min. The recorder keeps the
  // first per sequence and adds the second straight into the sequence's group, so the state a
  // token updates per sequence is 20 bytes per neuron, not 32.
  void add_sums(size_t offset, const float* x, int width);
  void add_spread(size_t offset, const float* x, int width);
  void merge(const TokenStats& other);
  void merge_sums(const TokenStats& other);  // count, sum, sumabs, max
  double mean(size_t i) const { return count ? sum[i] / count : 0.0; }
  double mean_abs(size_t i) const { return count ? sumabs[i] / count : 0.0; }
  // Population standard deviation over tokens.
  double std(size_t i) const;
};

}  // namespace nt
