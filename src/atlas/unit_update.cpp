#include "atlas/unit_update.h"

#include <algorithm>
#include <bit>
#include <limits>

#include "atlas/histogram_bins.h"
#include "util/thread_pool.h"

namespace nt {

namespace {

// Units folded together: one 64-byte line of a row's activations. A block's histograms (18 KiB)
// stay in L1 and its activations over the step's rows in L2 while its records are copied.
constexpr size_t kUnitBlock = 16;

float floor_of(const std::vector<ContextRecord>& list, size_t capacity) {
  return list.size() < capacity ? -std::numeric_limits<float>::infinity() : list.back().value;
}
uint64_t ceiling_of(const std::vector<ContextRecord>& list, size_t capacity) {
  if (capacity == 0) return 0;
  return list.size() < capacity ? std::numeric_limits<uint64_t>::max() : list.back().hash;
}

// Row r as a record of the unit in column `col`, without its window (enough to order it).
ContextRecord record_key(const StepRows& rows, int r, size_t col, const float* acts, size_t width, uint64_t hash) {
  const size_t ri = static_cast<size_t>(r);
  return {acts[ri * width + col], rows.doc[ri], rows.pos[ri], r - rows.window_begin[ri], hash, nullptr, {}};
}

// Adds the window: its tokens and the unit's activation at each of them.
void fill_window(ContextRecord& rec, const StepRows& rows, int r, size_t col, const float* acts, size_t width) {
  const size_t ri = static_cast<size_t>(r);
  const int wb = rows.window_begin[ri], we = rows.window_end[ri];
  rec.tokens = rows.window_tokens[static_cast<size_t>(rows.window[ri])];
  rec.acts.resize(static_cast<size_t>(we - wb));
  for (int j = wb; j < we; ++j) rec.acts[static_cast<size_t>(j - wb)] = acts[static_cast<size_t>(j) * width + col];
}

}  // namespace

// A slice's reusable buffers: the candidate rows of a block's units, and keep_records' own.
struct FoldScratch {
  std::vector<int> top[kUnitBlock], samples[kUnitBlock];
  std::vector<ContextRecord> keys;
  std::vector<size_t> order;
  std::vector<float> spare;  // an evicted record's activations, reused for the next window
};

namespace {

// Inserts the best `capacity` of the candidate rows into `list` (order `before`), copying a
// window only for the candidates that are kept.
template <class Before, class Key>
void keep_records(const StepRows& rows, const std::vector<int>& candidates, std::vector<ContextRecord>& list,
                  size_t capacity, Before before, Key key, size_t col, const float* acts, size_t width, FoldScratch& scratch) {
  std::vector<ContextRecord>& keys = scratch.keys;
  std::vector<size_t>& order = scratch.order;
  keys.clear();
  for (int r : candidates) keys.push_back(key(r));
  order.resize(keys.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const size_t keep = std::min(capacity, order.size());
  if (list.capacity() < capacity + 1) list.reserve(capacity + 1);  // insert_bounded's one over, no regrowth
  std::partial_sort(order.begin(), order.begin() + static_cast<long>(keep), order.end(),
                    [&](size_t a, size_t b) { return before(keys[a], keys[b]); });
  for (size_t j = 0; j < keep; ++j) {
    ContextRecord& rec = keys[order[j]];
    if (list.size() >= capacity && !before(rec, list.back())) break;
    rec.acts = std::move(scratch.spare);
    fill_window(rec, rows, candidates[order[j]], col, acts, width);
    scratch.spare.clear();
    insert_bounded(list, std::move(rec), capacity, before, &scratch.spare);
  }
}

// A block's per-step sums and density counts (its extremes are updated in place).
template <size_t N>
struct BlockSums {
  double sum[N] = {};
  int64_t positive[N] = {}, above[N] = {};
};

// Folds every counted row of the block's columns `a` (row stride `width`) into sums, counts and
// extremes; the AVX-512 form does the same operations in the same order (its maskz_ forms with a
// full mask are the plain instructions, as in trace/token_stats.cpp, for GCC 12's warnings).
template <size_t N>
void add_rows(const StepRows& rows, const float* a0, size_t width, float threshold, float* mn, float* mx, BlockSums<N>& b) {
#if defined(__AVX512F__)
  if constexpr (N == 16) {
    __m512 vmn = _mm512_loadu_ps(mn), vmx = _mm512_loadu_ps(mx);
    __m512d s0 = _mm512_setzero_pd(), s1 = _mm512_setzero_pd();
    __m512i pos = _mm512_setzero_si512(), abv = _mm512_setzero_si512();
    const __m512 zero = _mm512_setzero_ps(), thr = _mm512_set1_ps(threshold);
    const __m512i one = _mm512_set1_epi32(1);
    for (int r : rows.counted) {
      const float* a = a0 + static_cast<size_t>(r) * width;
      const __m512 x = _mm512_loadu_ps(a);
      s0 = _mm512_add_pd(s0, _mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(a)));
      s1 = _mm512_add_pd(s1, _mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(a + 8)));
      vmn = _mm512_maskz_min_ps(0xffff, x, vmn);  // (x < mn) ? x : mn, as std::min(mn, x)
      vmx = _mm512_maskz_max_ps(0xffff, x, vmx);  // (x > mx) ? x : mx, as std::max(mx, x)
      pos = _mm512_mask_add_epi32(pos, _mm512_cmp_ps_mask(x, zero, _CMP_GT_OQ), pos, one);
      abv = _mm512_mask_add_epi32(abv, _mm512_cmp_ps_mask(x, thr, _CMP_GT_OQ), abv, one);
    }
    _mm512_storeu_ps(mn, vmn);
    _mm512_storeu_ps(mx, vmx);
    _mm512_storeu_pd(b.sum, s0);
    _mm512_storeu_pd(b.sum + 8, s1);
    int32_t p[16], q[16];
    _mm512_storeu_si512(p, pos);
    _mm512_storeu_si512(q, abv);
    std::copy_n(p, 16, b.positive);
    std::copy_n(q, 16, b.above);
    return;
  }
#endif
  for (int r : rows.counted) {
    const float* a = a0 + static_cast<size_t>(r) * width;
    for (size_t i = 0; i < N; ++i) {
      b.sum[i] += a[i];
      mn[i] = std::min(mn[i], a[i]);
      mx[i] = std::max(mx[i], a[i]);
      b.positive[i] += a[i] > 0.0f;
      b.above[i] += a[i] > threshold;
    }
  }
}

// Counts every counted row of the block's columns in their histograms and collects, per unit,
// the rows that reach its top floor (into scratch.top) and its sample ceiling (scratch.samples;
// `ceiling` null: no samples).
template <size_t N>
void find_candidates(const StepRows& rows, const float* a0, size_t width, int64_t* hist, const float* floor,
                     const uint64_t* salt, const uint64_t* ceiling, FoldScratch& scratch) {
#if defined(__AVX512F__)
  if constexpr (N == 16) {
    const __m512 vfloor = _mm512_loadu_ps(floor);
    const __m512i salt0 = _mm512_loadu_si512(salt), salt1 = _mm512_loadu_si512(salt + 8);
    const __m512i ceil0 = ceiling ? _mm512_loadu_si512(ceiling) : _mm512_setzero_si512();
    const __m512i ceil1 = ceiling ? _mm512_loadu_si512(ceiling + 8) : _mm512_setzero_si512();
    const __m512i golden = _mm512_set1_epi64(static_cast<long long>(0x9e3779b97f4a7c15ull));
    auto below_ceiling = [&](__m512i token, __m512i s, __m512i c) {  // sample_hash(token, s) <= c
      const __m512i h = _mm512_mullo_epi64(_mm512_xor_si512(token, s), golden);
      return _mm512_cmple_epu64_mask(_mm512_xor_si512(h, _mm512_maskz_srli_epi64(0xff, h, 32)), c);
    };
    alignas(64) int32_t bins[16];
    for (int r : rows.counted) {
      const __m512 x = _mm512_loadu_ps(a0 + static_cast<size_t>(r) * width);
      _mm512_store_si512(bins, histogram_bins16(x));
      for (size_t i = 0; i < 16; ++i) ++hist[i * kHistogramBins + static_cast<size_t>(bins[i])];
      for (unsigned m = _mm512_cmp_ps_mask(x, vfloor, _CMP_GE_OQ); m; m &= m - 1)
        scratch.top[std::countr_zero(m)].push_back(r);
      if (!ceiling) continue;
      const __m512i token = _mm512_set1_epi64(static_cast<long long>(rows.hash[static_cast<size_t>(r)]));
      const unsigned sampled = below_ceiling(token, salt0, ceil0) | (unsigned{below_ceiling(token, salt1, ceil1)} << 8);
      for (unsigned m = sampled; m; m &= m - 1) scratch.samples[std::countr_zero(m)].push_back(r);
    }
    return;
  }
#endif
  for (int r : rows.counted) {
    const float* a = a0 + static_cast<size_t>(r) * width;
    const uint64_t th = rows.hash[static_cast<size_t>(r)];
    for (size_t i = 0; i < N; ++i) {
      ++hist[i * kHistogramBins + static_cast<size_t>(histogram_bin(a[i]))];
      if (a[i] >= floor[i]) scratch.top[i].push_back(r);
      if (ceiling && sample_hash(th, salt[i]) <= ceiling[i]) scratch.samples[i].push_back(r);
    }
  }
}

}  // namespace

UnitUpdater::UnitUpdater(AtlasState& state)
    : state_(state), salt_(state.layout.total), top_floor_(state.layout.total), sample_ceiling_(state.layout.total) {
  const size_t k = static_cast<size_t>(state.settings.top_k), s = static_cast<size_t>(state.settings.samples);
  for (size_t u = 0; u < state.layout.total; ++u) {
    const NeuronId id = state.layout.id(u);
    const TraceSite& site = state.layout.sites[static_cast<size_t>(id.site)];
    // An SAE's latents get other salts than its hook's dimensions (their samples are their own).
    salt_[u] = unit_salt(static_cast<int>(site.hook) + (site.is_sae() ? 256 * (id.site + 1) : 0), id.layer, id.index);
    top_floor_[u] = floor_of(state.top[u], k);
    sample_ceiling_[u] = ceiling_of(state.samples[u], s);
  }
}

void UnitUpdater::fold(const StepRows& rows, int site, int layer, const float* acts, int width) {
  if (rows.counted.empty()) return;
  const size_t unit0 = state_.layout.flat({site, layer, 0});
  const size_t w = static_cast<size_t>(width);
  // About two slices per thread, whole 16-float groups, at least 256 units each (as the recorder).
  const size_t slices = std::clamp<size_t>(w / 256, 1, 2 * static_cast<size_t>(thread_pool().size()));
  const size_t chunk = ((w + slices - 1) / slices + 15) / 16 * 16;
  thread_pool().parallel_for((w + chunk - 1) / chunk, 1, [&](size_t b, size_t e) {
    fold_slice(rows, unit0, b * chunk, std::min(w, e * chunk), acts, w);
  });
}

void UnitUpdater::fold_slice(const StepRows& rows, size_t unit0, size_t i0, size_t i1, const float* acts, size_t width) {
  FoldScratch scratch;
  for (size_t b = i0; b < i1; b += kUnitBlock) {
    if (b + kUnitBlock <= i1) {
      fold_block<kUnitBlock>(rows, unit0, b, acts, width, scratch);
      continue;
    }
    for (size_t i = b; i < i1; ++i) fold_block<1>(rows, unit0, i, acts, width, scratch);
  }
}

template <size_t N>
void UnitUpdater::fold_block(const StepRows& rows, size_t unit0, size_t c0, const float* acts, size_t width, FoldScratch& scratch) {
  const size_t u0 = unit0 + c0;
  const float threshold = static_cast<float>(state_.settings.threshold);
  BlockSums<N> b;
  add_rows(rows, acts + c0, width, threshold, state_.min.data() + u0, state_.max.data() + u0, b);
  double* sum = b.sum;
  // The step's own central moments (two passes over its rows), merged into the state's.
  const double nb = static_cast<double>(rows.counted.size());
  double m2[N] = {}, m3[N] = {}, m4[N] = {};
  for (size_t i = 0; i < N; ++i) sum[i] /= nb;
  for (int r : rows.counted) {
    const float* a = acts + static_cast<size_t>(r) * width + c0;
    for (size_t i = 0; i < N; ++i) {
      const double d = a[i] - sum[i], d2 = d * d;
      m2[i] += d2;
      m3[i] += d2 * d;
      m4[i] += d2 * d2;
    }
  }
  for (size_t i = 0; i < N; ++i) {
    state_.positive[u0 + i] += b.positive[i];
    state_.above[u0 + i] += b.above[i];
    merge_moments(state_.moments[u0 + i], state_.tokens, Moments{sum[i], m2[i], m3[i], m4[i]},
                  static_cast<int64_t>(rows.counted.size()));
  }

  // Histogram and record candidates: a unit's floor (top) and ceiling (samples) rule out most
  // tokens with one comparison each. The step's candidates of a unit are cut to the best K (and
  // S) before any window is copied: a unit that rises along a document would otherwise copy a
  // window at every token.
  const size_t k = static_cast<size_t>(state_.settings.top_k), n_samples = static_cast<size_t>(state_.settings.samples);
  int64_t* hist = state_.histogram.data() + u0 * kHistogramBins;
  find_candidates<N>(rows, acts + c0, width, hist, top_floor_.data() + u0, salt_.data() + u0,
                     n_samples > 0 ? sample_ceiling_.data() + u0 : nullptr, scratch);
  for (size_t i = 0; i < N; ++i) {
    const size_t u = u0 + i, col = c0 + i;
    if (!scratch.top[i].empty()) {
      keep_records(rows, scratch.top[i], state_.top[u], k, top_before,
                   [&](int r) { return record_key(rows, r, col, acts, width, 0); }, col, acts, width, scratch);
      top_floor_[u] = floor_of(state_.top[u], k);
      scratch.top[i].clear();
    }
    if (!scratch.samples[i].empty()) {
      keep_records(
          rows, scratch.samples[i], state_.samples[u], n_samples, sample_before,
          [&](int r) { return record_key(rows, r, col, acts, width, sample_hash(rows.hash[static_cast<size_t>(r)], salt_[u])); },
          col, acts, width, scratch);
      sample_ceiling_[u] = ceiling_of(state_.samples[u], n_samples);
      scratch.samples[i].clear();
    }
  }
}

}  // namespace nt
