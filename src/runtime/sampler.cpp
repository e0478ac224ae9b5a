#include "runtime/sampler.h"

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <cmath>
#include <string>

#include "util/error.h"
#include "util/option_error.h"

namespace nt {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

void validate(const SamplingConfig& c) {
  if (!(c.temperature >= 0.0f) || !std::isfinite(c.temperature))
    throw OptionError("generation.temperature", "must be >= 0 (got " + std::to_string(c.temperature) + ")");
  if (c.top_k < 0) throw OptionError("generation.top_k", "must be >= 0 (got " + std::to_string(c.top_k) + ")");
  if (!(c.top_p > 0.0f && c.top_p <= 1.0f))
    throw OptionError("generation.top_p", "must be in (0, 1] (got " + std::to_string(c.top_p) + ")");
}

Sampler::Sampler(const SamplingConfig& config, uint64_t sequence_index)
    : config_(config), rng_(splitmix64(config.seed ^ splitmix64(sequence_index + 0x5eed))) {}

int argmax(const float* logits, int n) {
#if defined(__AVX512F__)
  // The largest value in 16 lanes, then its first index: the same answer as the loop below (ties
  // go to the lowest id), several times faster (greedy decode calls this for every row of every
  // step, 50257 logits each). With a NaN anywhere the loop below decides, as it always did.
  if (n >= 16) {
    __m512 mx = _mm512_set1_ps(-INFINITY);
    __mmask16 nan = 0;
    int i = 0;
    for (; i + 16 <= n; i += 16) {
      const __m512 v = _mm512_loadu_ps(logits + i);
      nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
      mx = _mm512_maskz_max_ps(0xffff, mx, v);
    }
    float m = -INFINITY;
    alignas(64) float lanes[16];
    _mm512_store_ps(lanes, mx);
    for (float l : lanes) m = std::max(m, l);
    bool tail_nan = false;
    for (int j = i; j < n; ++j) {
      tail_nan |= std::isnan(logits[j]);
      m = std::max(m, logits[j]);
    }
    if (!nan && !tail_nan) {
      const __m512 mv = _mm512_set1_ps(m);
      for (int j = 0; j + 16 <= n; j += 16)
        if (const __mmask16 eq = _mm512_cmp_ps_mask(_mm512_loadu_ps(logits + j), mv, _CMP_EQ_OQ))
          return j + __builtin_ctz(eq);
      for (int j = n / 16 * 16; j < n; ++j)
        if (logits[j] == m) return j;
    }
  }
#elif defined(__AVX2__)
  // The same in 8 lanes.
  if (n >= 8) {
    __m256 mx = _mm256_set1_ps(-INFINITY);
    __m256 nan = _mm256_setzero_ps();
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      const __m256 v = _mm256_loadu_ps(logits + i);
      nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
      mx = _mm256_max_ps(mx, v);
    }
    float m = -INFINITY;
    alignas(32) float lanes[8];
    _mm256_store_ps(lanes, mx);
    for (float l : lanes) m = std::max(m, l);
    bool tail_nan = false;
    for (int j = i; j < n; ++j) {
      tail_nan |= std::isnan(logits[j]);
      m = std::max(m, logits[j]);
    }
    if (!_mm256_movemask_ps(nan) && !tail_nan) {
      const __m256 mv = _mm256_set1_ps(m);
      for (int j = 0; j + 8 <= n; j += 8)
        if (const int eq = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(logits + j), mv, _CMP_EQ_OQ)))
          return j + __builtin_ctz(static_cast<unsigned>(eq));
      for (int j = n / 8 * 8; j < n; ++j)
        if (logits[j] == m) return j;
    }
  }
#endif
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

int Sampler::next(const float* logits, int vocab_size) {
  if (config_.temperature == 0.0f) return argmax(logits, vocab_size);
  auto& c = candidates_;
  c.clear();
  c.reserve(static_cast<size_t>(vocab_size));
  for (int i = 0; i < vocab_size; ++i) c.emplace_back(logits[i] / config_.temperature, i);
  // Highest logit first; equal logits by lower id, so the order is fully determined.
  auto by_logit = [](const std::pair<float, int>& a, const std::pair<float, int>& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  size_t keep = c.size();
  if (config_.top_k > 0 && static_cast<size_t>(config_.top_k) < keep) {
    keep = static_cast<size_t>(config_.top_k);
    std::partial_sort(c.begin(), c.begin() + static_cast<long>(keep), c.end(), by_logit);
  } else {
    std::sort(c.begin(), c.end(), by_logit);
  }
  c.resize(keep);
  const float maxv = c[0].first;
  double total = 0.0;
  std::vector<double> probs(keep);
  for (size_t i = 0; i < keep; ++i) total += probs[i] = std::exp(static_cast<double>(c[i].first - maxv));
  if (config_.top_p < 1.0f) {
    // Keep the smallest prefix whose probability reaches top_p (at least one token).
    double cum = 0.0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      cum += probs[i] / total;
      if (cum >= config_.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    total = 0.0;
    for (size_t i = 0; i < keep; ++i) total += probs[i];
  }
  const double u = static_cast<double>(rng_() >> 11) * 0x1.0p-53 * total;
  double acc = 0.0;
  for (size_t i = 0; i < keep; ++i) {
    acc += probs[i];
    if (u < acc) return c[i].second;
  }
  return c[keep - 1].second;
}

}  // namespace nt
