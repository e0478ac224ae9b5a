#include "trace/token_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace nt {

void TokenStats::reset(size_t n) {
  count = 0;
  sum.assign(n, 0.0);
  sumsq.assign(n, 0.0);
  sumabs.assign(n, 0.0);
  max.assign(n, -std::numeric_limits<float>::infinity());
  min.assign(n, std::numeric_limits<float>::infinity());
  active.assign(n, 0);
}

namespace {

// The per-token update of the chosen fields: Sums = sum, sumabs, max; Spread = sumsq, min, active. Same
// operations and rounding as the plain loop: float -> double, then double adds. Null arrays are
// the fields not updated.
template <bool Sums, bool Spread>
void add_fields(double* s, double* sa, float* mx, double* sq, float* mn, int64_t* ac, const float* x, int width) {
  int i = 0;
#if defined(__AVX512F__)
  // This loop is what tracing costs per token; GCC 12 does not vectorise the plain loop below.
  // (The maskz_ forms with a full mask are the plain instructions; GCC 12's plain intrinsics
  // start from an "undefined" register that -Wmaybe-uninitialized reports once inlined.)
  for (; i + 16 <= width; i += 16) {
    const __m512 xf = _mm512_loadu_ps(x + i);
    if (Sums) _mm512_storeu_ps(mx + i, _mm512_maskz_max_ps(0xffff, _mm512_loadu_ps(mx + i), xf));
    if (Spread) _mm512_storeu_ps(mn + i, _mm512_maskz_min_ps(0xffff, _mm512_loadu_ps(mn + i), xf));
    const __mmask16 positive = _mm512_cmp_ps_mask(xf, _mm512_setzero_ps(), _CMP_GT_OQ);
    for (int h = 0; h < 2; ++h) {
      const int j = i + 8 * h;
      const __m512d v = _mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(x + j));
      if (Sums) {
        _mm512_storeu_pd(s + j, _mm512_add_pd(_mm512_loadu_pd(s + j), v));
        _mm512_storeu_pd(sa + j, _mm512_add_pd(_mm512_loadu_pd(sa + j), _mm512_abs_pd(v)));
      }
      if (Spread) {
        _mm512_storeu_pd(sq + j, _mm512_add_pd(_mm512_loadu_pd(sq + j), _mm512_mul_pd(v, v)));
        const __m512i a = _mm512_loadu_si512(ac + j);
        _mm512_storeu_si512(ac + j, _mm512_mask_add_epi64(a, static_cast<__mmask8>(positive >> (8 * h)), a,
                                                          _mm512_set1_epi64(1)));
      }
    }
  }
#endif
  for (; i < width; ++i) {
    const double v = x[i];
    if (Sums) {
      s[i] += v;
      sa[i] += std::fabs(v);
      mx[i] = std::max(mx[i], x[i]);
    }
    if (Spread) {
      sq[i] += v * v;
      mn[i] = std::min(mn[i], x[i]);
      ac[i] += x[i] > 0.0f;
    }
  }
}

}  // namespace

void TokenStats::add(size_t offset, const float* x, int width) {
  add_fields<true, true>(sum.data() + offset, sumabs.data() + offset, max.data() + offset, sumsq.data() + offset,
                         min.data() + offset, active.data() + offset, x, width);
}

void TokenStats::add_spread(size_t offset, const float* x, int width) {
  add_fields<false, true>(nullptr, nullptr, nullptr, sumsq.data() + offset, min.data() + offset,
                          active.data() + offset, x, width);
}

void TokenStats::add_spread_sparse(size_t offset, const int* index, const float* x, int n) {
  for (int k = 0; k < n; ++k) {
    const size_t i = offset + static_cast<size_t>(index[k]);
    const double v = x[k];
    sumsq[i] += v * v;
    min[i] = std::min(min[i], x[k]);
    active[i] += x[k] > 0.0f;
  }
}

void TokenStats::include_skipped_zeros(size_t offset, size_t n) {
  for (size_t i = offset; i < offset + n; ++i) {
    // active may run ahead of count (tokens of sequences still in flight); below count, a counted
    // token had the neuron inactive.
    if (active[i] >= count) continue;
    max[i] = std::max(max[i], 0.0f);
    min[i] = std::min(min[i], 0.0f);
  }
}

SequenceSums::SequenceSums(size_t n)
    : sum(n, 0.0), sumabs(n, 0.0), max(n, -std::numeric_limits<float>::infinity()) {}

void SequenceSums::add(size_t offset, const float* x, int width) {
  add_fields<true, false>(sum.data() + offset, sumabs.data() + offset, max.data() + offset, nullptr, nullptr,
                          nullptr, x, width);
}

void SequenceSums::add_sparse(size_t offset, const int* index, const float* x, int n) {
  for (int k = 0; k < n; ++k) {
    const size_t i = offset + static_cast<size_t>(index[k]);
    sum[i] += static_cast<double>(x[k]);
    sumabs[i] += std::fabs(static_cast<double>(x[k]));
    max[i] = std::max(max[i], x[k]);
  }
}

void TokenStats::merge_sums(const SequenceSums& o) {
  count += o.count;
  for (size_t i = 0; i < size(); ++i) {
    sum[i] += o.sum[i];
    sumabs[i] += o.sumabs[i];
    max[i] = std::max(max[i], o.max[i]);
  }
}

void TokenStats::merge(const TokenStats& o) {
  count += o.count;
  for (size_t i = 0; i < size(); ++i) {
    sum[i] += o.sum[i];
    sumsq[i] += o.sumsq[i];
    sumabs[i] += o.sumabs[i];
    max[i] = std::max(max[i], o.max[i]);
    min[i] = std::min(min[i], o.min[i]);
    active[i] += o.active[i];
  }
}

double TokenStats::std(size_t i) const {
  if (count < 2) return 0.0;
  const double m = sum[i] / count;
  return std::sqrt(std::max(0.0, sumsq[i] / count - m * m));
}

}  // namespace nt
