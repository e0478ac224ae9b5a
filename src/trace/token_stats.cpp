#include "trace/token_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>

#if defined(__AVX512F__) || defined(__AVX2__)
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
}

void TokenStats::add(size_t offset, const float* x, int width) {
  double* s = sum.data() + offset;
  double* sq = sumsq.data() + offset;
  double* sa = sumabs.data() + offset;
  float* mx = max.data() + offset;
  float* mn = min.data() + offset;
  for (int i = 0; i < width; ++i) {
    const double v = x[i];
    s[i] += v;
    sq[i] += v * v;
    sa[i] += std::fabs(v);
    mx[i] = std::max(mx[i], x[i]);
    mn[i] = std::min(mn[i], x[i]);
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
  }
}

double TokenStats::std(size_t i) const {
  if (count < 2) return 0.0;
  const double m = sum[i] / count;
  return std::sqrt(std::max(0.0, sumsq[i] / count - m * m));
}

SequenceSums::SequenceSums(size_t n) : sum(n, 0.0), sumabs(n, 0.0) {
  const size_t blocks = (n + kBlock - 1) / kBlock;
  partials.assign(blocks * 3 * kBlock, 0.0f);
  for (size_t b = 0; b < blocks; ++b)
    std::fill_n(partials.data() + b * 3 * kBlock + 2 * kBlock, kBlock, -std::numeric_limits<float>::infinity());
}

void SequenceSums::flush() {
  for (size_t i = 0; i < size(); ++i) {
    float* p = partials.data() + (i / kBlock) * 3 * kBlock + i % kBlock;
    sum[i] += p[0];
    sumabs[i] += p[kBlock];
    p[0] = p[kBlock] = 0.0f;
  }
}

namespace {

constexpr size_t B = SequenceSums::kBlock;

// One unit (any offset): the plain form of what the block kernels below do 16 units at a time,
// with the same operations and rounding.
void add_unit(float* block, size_t lane, double* s, double* sa, bool flush, TokenStats& g, size_t k, float xf) {
  float& ps = block[lane];
  float& pa = block[B + lane];
  float& mx = block[2 * B + lane];
  ps += xf;
  pa += std::fabs(xf);
  mx = std::max(mx, xf);
  if (flush) {
    *s += ps;
    *sa += pa;
    ps = pa = 0.0f;
  }
  const double v = xf;
  g.sum[k] += v;
  g.sumsq[k] += v * v;
  g.sumabs[k] += std::fabs(v);
  g.max[k] = std::max(g.max[k], xf);
  g.min[k] = std::min(g.min[k], xf);
}

#if defined(__AVX512F__) || defined(__AVX2__)
// Asks for the cache line holding p (an asm statement, as in model/kernels.cpp: GCC 12 drops
// __builtin_prefetch in loops like these). Reading it is harmless past the end of an array.
inline void prefetch_line(const void* p) { asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p))); }

// The next touch of a row's partials and activations comes a whole pass over the other rows later,
// at the next block: asked for kAhead blocks ahead, so that by then they are in cache (each row
// jumps to its own sequence's array, several MB from the others' on large models, which the
// hardware prefetcher does not follow).
constexpr size_t kAhead = 2;
inline void prefetch_row(const TokenRow& row, size_t k, size_t i, size_t end) {
  if (i + kAhead * B >= end) return;
  const float* p = row.seq->partials.data() + (k / B + kAhead) * 3 * B;
  prefetch_line(p);
  prefetch_line(p + B);
  prefetch_line(p + 2 * B);
  prefetch_line(row.x + i + kAhead * B);
}
#endif

#if defined(__AVX512F__)
// 16 units starting at block boundary k (k % 16 == 0) for every row, each run of rows with the
// same group holding the group's fields in registers. (The maskz_ forms with a full mask are the
// plain instructions; GCC 12's plain intrinsics start from an "undefined" register that
// -Wmaybe-uninitialized reports once inlined.)
void add_block(const std::vector<TokenRow>& rows, size_t k, size_t i, size_t end) {
  const size_t n = rows.size();
  for (const TokenRow& row : rows) prefetch_row(row, k, i, end);
  for (size_t r = 0; r < n;) {
    TokenStats& g = *rows[r].group;
    __m512d gs[2], gq[2], ga[2];
    for (int h = 0; h < 2; ++h) {
      gs[h] = _mm512_loadu_pd(g.sum.data() + k + 8 * h);
      gq[h] = _mm512_loadu_pd(g.sumsq.data() + k + 8 * h);
      ga[h] = _mm512_loadu_pd(g.sumabs.data() + k + 8 * h);
    }
    __m512 gmax = _mm512_loadu_ps(g.max.data() + k), gmin = _mm512_loadu_ps(g.min.data() + k);
    for (; r < n && rows[r].group == &g; ++r) {
      const TokenRow& row = rows[r];
      float* block = row.seq->partials.data() + k / B * 3 * B;
      const __m512 xf = _mm512_loadu_ps(row.x + i);
      const __m512 ps = _mm512_add_ps(_mm512_loadu_ps(block), xf);
      const __m512 pa = _mm512_add_ps(_mm512_loadu_ps(block + B), _mm512_abs_ps(xf));
      _mm512_storeu_ps(block + 2 * B, _mm512_maskz_max_ps(0xffff, _mm512_loadu_ps(block + 2 * B), xf));
      if (row.flush) {
        double* s = row.seq->sum.data() + k;
        double* sa = row.seq->sumabs.data() + k;
        for (int h = 0; h < 2; ++h) {
          const __m256 ps_h = h ? _mm512_maskz_extractf32x8_ps(0xff, ps, 1) : _mm512_maskz_extractf32x8_ps(0xff, ps, 0);
          const __m256 pa_h = h ? _mm512_maskz_extractf32x8_ps(0xff, pa, 1) : _mm512_maskz_extractf32x8_ps(0xff, pa, 0);
          _mm512_storeu_pd(s + 8 * h, _mm512_add_pd(_mm512_loadu_pd(s + 8 * h), _mm512_maskz_cvtps_pd(0xff, ps_h)));
          _mm512_storeu_pd(sa + 8 * h, _mm512_add_pd(_mm512_loadu_pd(sa + 8 * h), _mm512_maskz_cvtps_pd(0xff, pa_h)));
        }
        _mm512_storeu_ps(block, _mm512_setzero_ps());
        _mm512_storeu_ps(block + B, _mm512_setzero_ps());
      } else {
        _mm512_storeu_ps(block, ps);
        _mm512_storeu_ps(block + B, pa);
      }
      for (int h = 0; h < 2; ++h) {
        const __m512d v = _mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(row.x + i + 8 * h));
        gs[h] = _mm512_add_pd(gs[h], v);
        gq[h] = _mm512_add_pd(gq[h], _mm512_mul_pd(v, v));
        ga[h] = _mm512_add_pd(ga[h], _mm512_abs_pd(v));
      }
      gmax = _mm512_maskz_max_ps(0xffff, gmax, xf);
      gmin = _mm512_maskz_min_ps(0xffff, gmin, xf);
    }
    for (int h = 0; h < 2; ++h) {
      _mm512_storeu_pd(g.sum.data() + k + 8 * h, gs[h]);
      _mm512_storeu_pd(g.sumsq.data() + k + 8 * h, gq[h]);
      _mm512_storeu_pd(g.sumabs.data() + k + 8 * h, ga[h]);
    }
    _mm512_storeu_ps(g.max.data() + k, gmax);
    _mm512_storeu_ps(g.min.data() + k, gmin);
  }
}
#elif defined(__AVX2__)
// The same in 8-lane halves (AVX2 + FMA builds, -march=x86-64-v3): 8 units through all rows.
void add_half_block(const std::vector<TokenRow>& rows, size_t k, size_t i) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256d sign_d = _mm256_set1_pd(-0.0);
  const size_t n = rows.size(), lane = k % B;  // 0 or 8
  for (size_t r = 0; r < n;) {
    TokenStats& g = *rows[r].group;
    __m256d gs[2], gq[2], ga[2];
    for (int q = 0; q < 2; ++q) {
      gs[q] = _mm256_loadu_pd(g.sum.data() + k + 4 * q);
      gq[q] = _mm256_loadu_pd(g.sumsq.data() + k + 4 * q);
      ga[q] = _mm256_loadu_pd(g.sumabs.data() + k + 4 * q);
    }
    __m256 gmax = _mm256_loadu_ps(g.max.data() + k), gmin = _mm256_loadu_ps(g.min.data() + k);
    for (; r < n && rows[r].group == &g; ++r) {
      const TokenRow& row = rows[r];
      float* block = row.seq->partials.data() + k / B * 3 * B + lane;
      const __m256 xf = _mm256_loadu_ps(row.x + i);
      const __m256 ps = _mm256_add_ps(_mm256_loadu_ps(block), xf);
      const __m256 pa = _mm256_add_ps(_mm256_loadu_ps(block + B), _mm256_andnot_ps(sign, xf));
      _mm256_storeu_ps(block + 2 * B, _mm256_max_ps(_mm256_loadu_ps(block + 2 * B), xf));
      if (row.flush) {
        double* s = row.seq->sum.data() + k;
        double* sa = row.seq->sumabs.data() + k;
        for (int q = 0; q < 2; ++q) {
          const __m128 ps_q = q ? _mm256_extractf128_ps(ps, 1) : _mm256_castps256_ps128(ps);
          const __m128 pa_q = q ? _mm256_extractf128_ps(pa, 1) : _mm256_castps256_ps128(pa);
          _mm256_storeu_pd(s + 4 * q, _mm256_add_pd(_mm256_loadu_pd(s + 4 * q), _mm256_cvtps_pd(ps_q)));
          _mm256_storeu_pd(sa + 4 * q, _mm256_add_pd(_mm256_loadu_pd(sa + 4 * q), _mm256_cvtps_pd(pa_q)));
        }
        _mm256_storeu_ps(block, _mm256_setzero_ps());
        _mm256_storeu_ps(block + B, _mm256_setzero_ps());
      } else {
        _mm256_storeu_ps(block, ps);
        _mm256_storeu_ps(block + B, pa);
      }
      for (int q = 0; q < 2; ++q) {
        const __m256d v = _mm256_cvtps_pd(_mm_loadu_ps(row.x + i + 4 * q));
        gs[q] = _mm256_add_pd(gs[q], v);
        gq[q] = _mm256_add_pd(gq[q], _mm256_mul_pd(v, v));
        ga[q] = _mm256_add_pd(ga[q], _mm256_andnot_pd(sign_d, v));
      }
      gmax = _mm256_max_ps(gmax, xf);
      gmin = _mm256_min_ps(gmin, xf);
    }
    for (int q = 0; q < 2; ++q) {
      _mm256_storeu_pd(g.sum.data() + k + 4 * q, gs[q]);
      _mm256_storeu_pd(g.sumsq.data() + k + 4 * q, gq[q]);
      _mm256_storeu_pd(g.sumabs.data() + k + 4 * q, ga[q]);
    }
    _mm256_storeu_ps(g.max.data() + k, gmax);
    _mm256_storeu_ps(g.min.data() + k, gmin);
  }
}
void add_block(const std::vector<TokenRow>& rows, size_t k, size_t i, size_t end) {
  for (const TokenRow& row : rows) prefetch_row(row, k, i, end);
  add_half_block(rows, k, i);
  add_half_block(rows, k + 8, i + 8);
}
#endif

}  // namespace

void add_tokens(const std::vector<TokenRow>& rows, size_t offset, size_t from, int width) {
  const size_t n = static_cast<size_t>(width);
  size_t i = 0;
#if defined(__AVX512F__) || defined(__AVX2__)
  if (offset % B == 0)
    for (; i + B <= n; i += B) add_block(rows, offset + i, from + i, from + n);
#endif
  for (const TokenRow& row : rows)
    for (size_t j = i; j < n; ++j) {
      const size_t k = offset + j;
      add_unit(row.seq->partials.data() + k / B * 3 * B, k % B, row.seq->sum.data() + k, row.seq->sumabs.data() + k,
               row.flush, *row.group, k, row.x[from + j]);
    }
}

}  // namespace nt
