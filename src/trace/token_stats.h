#pragma once
// Streaming statistics over tokens, per neuron: count, sum, sum of squares, sum of |x|, max, min,
// and how many tokens had the neuron active (> 0: its density).
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
  std::vector<int64_t> active;  // tokens with x > 0

  explicit TokenStats(size_t n = 0) { reset(n); }
  void reset(size_t n);
  size_t size() const { return sum.size(); }
  // Adds one token's activations x[0..width) for neurons offset..offset+width (count is the
  // caller's to keep).
  void add(size_t offset, const float* x, int width);
  // The same for sumsq, min and active only (the recorder keeps sum, sumabs and max per sequence, in
  // SequenceSums, and adds these straight into the sequence's group).
  void add_spread(size_t offset, const float* x, int width);
  // One token's sparse activations: x[k] at neuron offset + index[k], the neurons not listed being
  // 0 (an SAE's latents, which are never negative); only sumsq, min and active (as add_spread).
  void add_spread_sparse(size_t offset, const int* index, const float* x, int n);
  // For neurons offset..offset+n updated sparsely: tokens not listed were 0, so max and min
  // include 0 where the neuron was inactive at some counted token. Called as sequences are merged;
  // the call after a group's last sequence leaves every neuron right.
  void include_skipped_zeros(size_t offset, size_t n);
  void merge(const TokenStats& other);
  void merge_sums(const SequenceSums& other);  // count, sum, sumabs, max
  double mean(size_t i) const { return count ? sum[i] / count : 0.0; }
  double mean_abs(size_t i) const { return count ? sumabs[i] / count : 0.0; }
  // Fraction of the tokens at which neuron i was active (> 0).
  double density(size_t i) const { return count ? static_cast<double>(active[i]) / count : 0.0; }
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
  void add_sparse(size_t offset, const int* index, const float* x, int n);  // as add_spread_sparse
  double mean(size_t i) const { return count ? sum[i] / count : 0.0; }
  double mean_abs(size_t i) const { return count ? sumabs[i] / count : 0.0; }
};

}  // namespace nt
