#pragma once
// Streaming statistics over tokens, per unit (neuron or residual dimension): count, sum, sum of
// squares, sum of |x|, max, min. Memory is fixed by the number of units, whatever the number of
// tokens.
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
  // Adds one token's activations x[0..width) for units offset..offset+width (count is the
  // caller's to keep).
  void add(size_t offset, const float* x, int width);
  void merge(const TokenStats& other);
  double mean(size_t i) const { return count ? sum[i] / count : 0.0; }
  double mean_abs(size_t i) const { return count ? sumabs[i] / count : 0.0; }
  // Population standard deviation over tokens.
  double std(size_t i) const;
};

// What the recorder keeps per sequence while it runs: count, sum, sum of |x| and max. The
// recorder's cost per token is reading and writing these for every traced unit of every sequence
// in the step (16 sequences x 169k units on a TinyLlama-sized model: they do not stay in cache
// between steps), so they are kept small: per token, float partial sums of x and |x| and the float
// max (12 bytes per unit, in one array of 16-unit blocks), added into double totals every
// kFlushEvery tokens of the sequence (and by flush()). A partial holds at most kFlushEvery terms,
// so its rounding error stays within ~kFlushEvery float ulps of their magnitude; the means come
// out as floats anyway (SampleSummary). The group's statistics, which need all digits (variance,
// Cohen's d), are accumulated in double directly (add_token).
struct SequenceSums {
  static constexpr int kFlushEvery = 16;
  static constexpr size_t kBlock = 16;  // units per block of the partials array

  int64_t count = 0;  // tokens recorded
  std::vector<double> sum, sumabs;  // totals of the flushed partials
  // [blocks][3][kBlock]: partial sum of x, partial sum of |x|, max.
  std::vector<float> partials;

  explicit SequenceSums(size_t n = 0);
  size_t size() const { return sum.size(); }
  // Adds the partials into the totals and clears them.
  void flush();
  float max(size_t i) const { return partials[(i / kBlock) * 3 * kBlock + 2 * kBlock + i % kBlock]; }
  // Mean and mean |x|: call flush() first.
  double mean(size_t i) const { return count ? sum[i] / count : 0.0; }
  double mean_abs(size_t i) const { return count ? sumabs[i] / count : 0.0; }
};

// One token (a row of a step) for add_tokens: its activations (the row of the hook's array), its group's
// statistics, and whether this token flushes the sequence's partials into its totals (the caller
// flushes every kFlushEvery-th token of a sequence).
struct TokenRow {
  const float* x;
  SequenceSums* seq;
  TokenStats* group;
  bool flush;
};

// The rows' tokens for units offset..offset+width (x[from..from+width) of each row): each sequence's
// partials and every field of each group's statistics. Vectorised when offset is a multiple of
// SequenceSums::kBlock: 16 units at a time through all rows, the group's fields held in registers
// while consecutive rows share the group (in a step every row of a group adds to the same
// statistics; reading and writing them once per run of rows instead of once per row is what keeps
// the group's double sums affordable). The same additions in the same order as one row at a time.
void add_tokens(const std::vector<TokenRow>& rows, size_t offset, size_t from, int width);

}  // namespace nt
