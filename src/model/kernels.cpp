#include "model/kernels.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#if defined(__AVX512F__) || defined(__AVX2__)
#include <immintrin.h>
#endif

#include "util/error.h"
#include "util/thread_pool.h"

namespace nt {

// ---- Linear layers (Matrix) ----------------------------------------------------------------------

namespace {

#if defined(__AVX512F__)
// (The maskz_ forms with a full mask are the plain instructions; GCC 12's plain intrinsics start
// from an "undefined" register that -Wmaybe-uninitialized reports once inlined.)
constexpr __mmask16 kAll = 0xffff;

// 16 stored weights widened to float32: bf16 is the top half of a float32; int8 converts exactly.
inline __m512 widen16(const uint16_t* p) {
  const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  return _mm512_castsi512_ps(_mm512_maskz_slli_epi32(kAll, _mm512_maskz_cvtepu16_epi32(kAll, h), 16));
}
inline __m512 widen16(const float* p) { return _mm512_loadu_ps(p); }
inline __m512 widen16(const int8_t* p) {
  const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm512_maskz_cvtepi32_ps(kAll, _mm512_maskz_cvtepi8_epi32(kAll, q));
}

inline float hsum(__m512 v) {
  __m512 t = _mm512_add_ps(v, _mm512_maskz_shuffle_f32x4(kAll, v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  t = _mm512_add_ps(t, _mm512_maskz_shuffle_f32x4(kAll, t, t, _MM_SHUFFLE(2, 3, 0, 1)));
  __m128 s = _mm512_maskz_extractf32x4_ps(0xf, t, 0);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmax(__m512 v) {
  __m512 t = _mm512_maskz_max_ps(kAll, v, _mm512_maskz_shuffle_f32x4(kAll, v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  t = _mm512_maskz_max_ps(kAll, t, _mm512_maskz_shuffle_f32x4(kAll, t, t, _MM_SHUFFLE(2, 3, 0, 1)));
  __m128 s = _mm512_maskz_extractf32x4_ps(0xf, t, 0);
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// e^x for 16 floats (Cephes expf: x = n ln2 + r with |r| <= ln2/2, degree-6 polynomial for e^r,
// then scaled by 2^n), within 2 ulp of std::exp; overflows to +inf and underflows to 0 as expf does.
inline __m512 exp16(__m512 x) {
  x = _mm512_maskz_min_ps(kAll, _mm512_maskz_max_ps(kAll, x, _mm512_set1_ps(-104.0f)), _mm512_set1_ps(89.0f));
  const __m512 n = _mm512_maskz_roundscale_ps(kAll, _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                              _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_set1_ps(1.9875691500e-4f);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  p = _mm512_fmadd_ps(_mm512_mul_ps(p, r), r, _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_maskz_scalef_ps(kAll, p, n);
}

// Applies f (16 lanes) to x[0 .. count), the tail under a mask.
template <class F>
inline void map16(float* x, size_t count, F f) {
  size_t i = 0;
  for (; i + 16 <= count; i += 16) _mm512_storeu_ps(x + i, f(_mm512_loadu_ps(x + i)));
  if (i < count) {
    const __mmask16 m = static_cast<__mmask16>((1u << (count - i)) - 1u);
    _mm512_mask_storeu_ps(x + i, m, f(_mm512_maskz_loadu_ps(m, x + i)));
  }
}

// The masks of the 16-float vectors of a panel group whose first `valid` outputs exist.
template <int NV>
inline void panel_masks(int valid, __mmask16 (&m)[NV]) {
  for (int v = 0; v < NV; ++v) {
    const int lanes = std::clamp(valid - 16 * v, 0, 16);
    m[v] = static_cast<__mmask16>((1u << lanes) - 1u);
  }
}

// Asks for the cache line holding p. (An asm statement: GCC 12's dead-code elimination drops
// _mm_prefetch / __builtin_prefetch inside the branches and loops where it is used here.)
inline void prefetch_line(const void* p) { asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p))); }

// y[r][0 .. NP*kPanel) (+)= sum over k < kb of x[r][k] * W[k][0 .. NP*kPanel), for R rows of x and
// NP adjacent panels (the second starts panel_stride values after the first): R x 4NP vectors of
// accumulators, one panel row per panel (4 vectors, widened from the stored type) and one
// broadcast x value per row for each k. `first`: start from zero, not from y (the partial sums of
// earlier input blocks); `last`: scale (int8 rows) and add the bias on the way out. Only the
// `valid` outputs of y are read or written. pf: cache lines to ask for meanwhile, pf_per_k per k,
// up to pf_end (the next block of weights; linear_panels).
template <class T, int R, int NP>
void panel_tile(const float* x, size_t ldx, const T* panel, size_t panel_stride, int kb, float* y, size_t ldy,
                int valid, bool first, bool last, const float* scale, const float* bias, const char* pf = nullptr,
                int pf_per_k = 0, const char* pf_end = nullptr) {
  constexpr int NV = 4 * NP;
  __mmask16 m[NV];
  panel_masks<NV>(valid, m);
  __m512 acc[R][NV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      acc[r][v] = first ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m[v], y + r * ldy + 16 * v);
  for (int k = 0; k < kb; ++k) {
    if (pf)
      for (int l = 0; l < pf_per_k; ++l) {
        const char* a = pf + (static_cast<size_t>(k) * pf_per_k + l) * 64;
        if (a < pf_end) prefetch_line(a);
      }
    __m512 wv[NV];
#pragma GCC unroll 2
    for (int q = 0; q < NP; ++q) {
      const T* pk = panel + q * panel_stride + static_cast<size_t>(k) * kPanel;
#pragma GCC unroll 4
      for (int v = 0; v < 4; ++v) wv[4 * q + v] = widen16(pk + 16 * v);
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512 xb = _mm512_set1_ps(x[r * ldx + k]);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(xb, wv[v], acc[r][v]);
    }
  }
  __m512 sv[NV], bv[NV];
  if (last)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) {
      sv[v] = scale ? _mm512_maskz_loadu_ps(m[v], scale + 16 * v) : _mm512_set1_ps(1.0f);
      bv[v] = bias ? _mm512_maskz_loadu_ps(m[v], bias + 16 * v) : _mm512_setzero_ps();
    }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      _mm512_mask_storeu_ps(y + r * ldy + 16 * v, m[v], last ? _mm512_fmadd_ps(acc[r][v], sv[v], bv[v]) : acc[r][v]);
}

#elif defined(__AVX2__) && defined(__FMA__)
// AVX2 + FMA (x86-64-v3): the same products as the AVX-512 path, 8 floats a vector. 16 vector
// registers hold fewer sums, so a tile of R rows covers the panels in slices of CV vectors
// (R x CV sums + CV weights <= 16 registers); each output is still summed in input order with one
// FMA per weight, so the results equal the AVX-512 path's.

// 8 stored weights widened to float32 (as widen16).
inline __m256 widen8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 widen8(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}
inline __m256 widen8(const int8_t* p) {
  const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(p));
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
}

// The mask of the first `lanes` (0..8) lanes, for maskload / maskstore.
inline __m256i lane_mask(int lanes) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}
// Loads / stores the first `lanes` floats at p (all 8 with plain instructions: masked stores are
// slow on AMD).
inline __m256 load_lanes(const float* p, int lanes, __m256i m) {
  return lanes == 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m);
}
inline void store_lanes(float* p, int lanes, __m256i m, __m256 v) {
  if (lanes == 8)
    _mm256_storeu_ps(p, v);
  else
    _mm256_maskstore_ps(p, m, v);
}

// (As the AVX-512 path's: GCC 12 drops _mm_prefetch in these loops.)
inline void prefetch_line(const void* p) { asm volatile("prefetcht0 %0" : : "m"(*static_cast<const char*>(p))); }

// Vectors v0 .. v0+CV-1 of the tile's 8 x NP vectors (vector v: panel v / 8, outputs 8 (v % 8) ..
// of it; y's outputs 8v ..): panel_tile's arguments otherwise.
template <class T, int R, int CV>
void slice_tile(const float* x, size_t ldx, const T* panel, size_t panel_stride, int v0, int kb, float* y,
                size_t ldy, int valid, bool first, bool last, const float* scale, const float* bias, const char* pf,
                int pf_per_k, const char* pf_end) {
  int lanes[CV];
  __m256i m[CV];
  const T* w[CV];
#pragma GCC unroll 8
  for (int c = 0; c < CV; ++c) {
    const int v = v0 + c;
    lanes[c] = std::clamp(valid - 8 * v, 0, 8);
    m[c] = lane_mask(lanes[c]);
    w[c] = panel + static_cast<size_t>(v / 8) * panel_stride + 8 * (v % 8);
  }
  __m256 acc[R][CV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int c = 0; c < CV; ++c)
      acc[r][c] = first ? _mm256_setzero_ps() : load_lanes(y + r * ldy + 8 * (v0 + c), lanes[c], m[c]);
  for (int k = 0; k < kb; ++k) {
    if (pf)
      for (int l = 0; l < pf_per_k; ++l) {
        const char* a = pf + (static_cast<size_t>(k) * pf_per_k + l) * 64;
        if (a < pf_end) prefetch_line(a);
      }
    __m256 wv[CV];
#pragma GCC unroll 8
    for (int c = 0; c < CV; ++c) wv[c] = widen8(w[c] + static_cast<size_t>(k) * kPanel);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m256 xb = _mm256_broadcast_ss(x + r * ldx + k);
#pragma GCC unroll 8
      for (int c = 0; c < CV; ++c) acc[r][c] = _mm256_fmadd_ps(xb, wv[c], acc[r][c]);
    }
  }
#pragma GCC unroll 8
  for (int c = 0; c < CV; ++c) {
    const float* sc = scale ? scale + 8 * (v0 + c) : nullptr;
    const float* bi = bias ? bias + 8 * (v0 + c) : nullptr;
    const __m256 sv = last && sc ? load_lanes(sc, lanes[c], m[c]) : _mm256_set1_ps(1.0f);
    const __m256 bv = last && bi ? load_lanes(bi, lanes[c], m[c]) : _mm256_setzero_ps();
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
      store_lanes(y + r * ldy + 8 * (v0 + c), lanes[c], m[c], last ? _mm256_fmadd_ps(acc[r][c], sv, bv) : acc[r][c]);
  }
}

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// e^x for 8 floats: exp16's reduction and polynomial; 2^n applied as two factors 2^(n/2) and
// 2^(n - n/2), each a normal float, so the result overflows to +inf and underflows through the
// subnormals to 0 as expf does.
inline __m256 exp8(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-104.0f)), _mm256_set1_ps(89.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1), n2 = _mm256_sub_epi32(ni, n1);
  auto pow2 = [](__m256i e) {
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(e, _mm256_set1_epi32(127)), 23));
  };
  return _mm256_mul_ps(_mm256_mul_ps(p, pow2(n1)), pow2(n2));
}

// Applies f (8 lanes) to x[0 .. count), the tail under a mask.
template <class F>
inline void map8(float* x, size_t count, F f) {
  size_t i = 0;
  for (; i + 8 <= count; i += 8) _mm256_storeu_ps(x + i, f(_mm256_loadu_ps(x + i)));
  if (i < count) {
    const __m256i m = lane_mask(static_cast<int>(count - i));
    _mm256_maskstore_ps(x + i, m, f(_mm256_maskload_ps(x + i, m)));
  }
}

// The AVX-512 path's panel_tile (same arguments), slice by slice; the prefetches go with the first.
template <class T, int R, int NP>
void panel_tile(const float* x, size_t ldx, const T* panel, size_t panel_stride, int kb, float* y, size_t ldy,
                int valid, bool first, bool last, const float* scale, const float* bias, const char* pf = nullptr,
                int pf_per_k = 0, const char* pf_end = nullptr) {
  constexpr int CV = R == 1 ? 8 : R == 2 ? 4 : 2;
  for (int v0 = 0; v0 < 8 * NP && 8 * v0 < valid; v0 += CV)
    slice_tile<T, R, CV>(x, ldx, panel, panel_stride, v0, kb, y, ldy, valid, first, last, scale, bias,
                         v0 == 0 ? pf : nullptr, pf_per_k, pf_end);
}

#else
inline float widen1(uint16_t h) { return bf16_to_float(h); }
inline float widen1(int8_t q) { return static_cast<float>(q); }
inline float widen1(float f) { return f; }

// Plain loops (other CPUs, e.g. aarch64), in an order compilers vectorise: for each row, a panel
// row of weights at a time into the row's sums, each output summed in input order.
template <class T, int R, int NP>
void panel_tile(const float* x, size_t ldx, const T* panel, size_t panel_stride, int kb, float* y, size_t ldy,
                int valid, bool first, bool last, const float* scale, const float* bias, const char* = nullptr,
                int = 0, const char* = nullptr) {
  for (int r = 0; r < R; ++r) {
    float acc[kPanel * NP];
    for (int j = 0; j < kPanel * NP; ++j) acc[j] = first || j >= valid ? 0.0f : y[r * ldy + j];
    for (int k = 0; k < kb; ++k) {
      const float xk = x[r * ldx + k];
      for (int q = 0; q < NP; ++q) {
        const T* pk = panel + q * panel_stride + static_cast<size_t>(k) * kPanel;
        for (int j = 0; j < kPanel; ++j) acc[q * kPanel + j] += xk * widen1(pk[j]);
      }
    }
    for (int j = 0; j < valid; ++j)
      y[r * ldy + j] = last ? acc[j] * (scale ? scale[j] : 1.0f) + (bias ? bias[j] : 0.0f) : acc[j];
  }
}
#endif

// Rows of x per register tile, inputs per pass over a panel (a tile's slice of x stays in L1 and
// the panel's slice in L2), rows of x per pass over all the weights (large steps: prefill).
constexpr int kTileRows = 6;
constexpr int kInputBlock = 768;
constexpr int kRowChunk = 192;
// Steps of at most this many rows read two panels at a time, in tiles of 2 rows (2 x 8 sums).
constexpr int kPairRows = 4;
// Steps of at least this many rows ask for the next block of weights ahead (linear_panels).
constexpr int kPrefetchRows = 4 * kTileRows;

template <class T>
void panel_rows(int rows, const float* x, size_t ldx, const T* panel, size_t panel_stride, int kb, float* y, size_t ldy,
                int valid, bool first, bool last, const float* scale, const float* bias, const char* pf, int pf_per_k,
                const char* pf_end) {
  switch (rows) {
    case 6: panel_tile<T, 6, 1>(x, ldx, panel, panel_stride, kb, y, ldy, valid, first, last, scale, bias, pf, pf_per_k, pf_end); break;
    case 5: panel_tile<T, 5, 1>(x, ldx, panel, panel_stride, kb, y, ldy, valid, first, last, scale, bias, pf, pf_per_k, pf_end); break;
    case 4: panel_tile<T, 4, 1>(x, ldx, panel, panel_stride, kb, y, ldy, valid, first, last, scale, bias, pf, pf_per_k, pf_end); break;
    case 3: panel_tile<T, 3, 1>(x, ldx, panel, panel_stride, kb, y, ldy, valid, first, last, scale, bias, pf, pf_per_k, pf_end); break;
    case 2: panel_tile<T, 2, 1>(x, ldx, panel, panel_stride, kb, y, ldy, valid, first, last, scale, bias, pf, pf_per_k, pf_end); break;
    case 1: panel_tile<T, 1, 1>(x, ldx, panel, panel_stride, kb, y, ldy, valid, first, last, scale, bias, pf, pf_per_k, pf_end); break;
    default: break;
  }
}

template <class T>
void panel_tiles_pair(int rows, const float* x, size_t ldx, const T* panel, size_t panel_stride, int kb, float* y,
                      size_t ldy, int valid, bool first, bool last, const float* scale, const float* bias) {
  if (rows == 2)
    panel_tile<T, 2, 2>(x, ldx, panel, panel_stride, kb, y, ldy, valid, first, last, scale, bias);
  else
    panel_tile<T, 1, 2>(x, ldx, panel, panel_stride, kb, y, ldy, valid, first, last, scale, bias);
}

// x with each column i multiplied by scale[i] (int8 InOut), in a per-thread buffer.
const float* scale_columns(const float* x, int n, int in, const float* scale) {
  thread_local std::vector<float> buf;
  buf.resize(static_cast<size_t>(n) * in);
  for (int r = 0; r < n; ++r) {
    const float* xr = x + static_cast<size_t>(r) * in;
    float* br = buf.data() + static_cast<size_t>(r) * in;
    for (int i = 0; i < in; ++i) br[i] = xr[i] * scale[i];
  }
  return buf.data();
}

template <class T>
void linear_panels(const float* x, int n, const Matrix& w, const T* data, const float* bias, float* y) {
  const int in = w.in(), out = w.out(), panels = w.panels();
  const float* xs = w.scales_input() ? scale_columns(x, n, in, w.scales()) : x;
  const float* row_scale = w.format() == WeightFormat::Int8 && !w.scales_input() ? w.scales() : nullptr;
  const size_t ldx = static_cast<size_t>(in), ldy = static_cast<size_t>(out);
  // Panels are taken one at a time, or two at a time for a few rows (two streams from memory
  // per thread, and twice the independent sums, keep decode at the read bandwidth), and split
  // evenly into one range of adjacent panels per thread: a thread then reads one contiguous
  // stretch of memory, which the hardware prefetcher follows from panel to panel (handing out
  // one panel at a time read 20-25% slower at 1-16 rows; measured on 226 MB of 768 x 3072
  // matrices). A panel is kPanel x in weights: 196 KiB for GPT-2 small in float32.
  const size_t stride = ldx * kPanel;
  const int group = n <= kPairRows ? 2 : 1;
  const size_t tasks = static_cast<size_t>((panels + group - 1) / group);
  const size_t ranges = std::min(tasks, static_cast<size_t>(thread_pool().size()));
  for (int r0 = 0; r0 < n; r0 += kRowChunk) {
    const int nr = std::min(kRowChunk, n - r0);
    thread_pool().parallel_for(ranges, 1, [&](size_t range, size_t) {
      const size_t b = tasks * range / ranges, e = tasks * (range + 1) / ranges;
      for (size_t t = b; t < e; ++t) {
        const int p = static_cast<int>(t) * group, np = std::min(group, panels - p);
        const int o0 = p * kPanel, valid = std::min(np * kPanel, out - o0);
        const T* panel = data + static_cast<size_t>(p) * stride;
        for (int k0 = 0; k0 < in; k0 += kInputBlock) {
          const int kb = std::min(kInputBlock, in - k0);
          const bool first = k0 == 0, last = k0 + kb >= in;
          const int tile_rows = group == 2 ? 2 : kTileRows;
          // Many rows (>= kPrefetchRows) make a block compute-bound, and the hardware prefetcher
          // leaves the first tile of each block waiting on memory. So the block of weights this
          // thread reads next (the next input block of this panel, or the first of the next panel
          // in its range) is asked for while this one is computed: by the tiles after the first,
          // in shares proportional to their rows, spread over their k loops. (45 rows: 18.4 ->
          // 15.9 ms over the 226 MB above; fewer rows gain nothing, or lose.)
          const char* next = nullptr;
          size_t next_bytes = 0;
          if (group == 1 && nr >= kPrefetchRows) {
            if (k0 + kb < in) {
              next = reinterpret_cast<const char*>(panel + static_cast<size_t>(k0 + kb) * kPanel);
              next_bytes = static_cast<size_t>(std::min(kInputBlock, in - k0 - kb)) * kPanel * sizeof(T);
            } else if (t + 1 < e) {
              next = reinterpret_cast<const char*>(panel + stride);
              next_bytes = static_cast<size_t>(std::min(kInputBlock, in)) * kPanel * sizeof(T);
            }
          }
          const size_t next_lines = (next_bytes + 63) / 64;
          size_t asked = 0;  // lines handed to earlier tiles
          // Rows split into tiles of nearly equal size (45 rows: 5 x 6 + 3 x 5, not 7 x 6 + 3).
          const int tiles = (nr + tile_rows - 1) / tile_rows;
          const int rows_first = nr / tiles + (nr % tiles > 0);
          for (int ti = 0, r = 0; ti < tiles; ++ti) {
            const int rows = nr / tiles + (ti < nr % tiles);
            const char* pf = nullptr;
            int pf_per_k = 0;
            size_t pf_lines = 0;
            if (next && ti > 0) {
              const size_t later_rows = static_cast<size_t>(nr - rows_first);
              pf_lines = std::min(next_lines - asked,
                                  (next_lines * static_cast<size_t>(rows) + later_rows - 1) / later_rows);
              pf = next + asked * 64;
              pf_per_k = static_cast<int>((pf_lines + kb - 1) / kb);
              asked += pf_lines;
            }
            const size_t row = static_cast<size_t>(r0 + r);
            r += rows;
            const float* xr = xs + row * ldx + k0;
            const T* pk = panel + static_cast<size_t>(k0) * kPanel;
            float* yr = y + row * ldy + o0;
            const float* sc = row_scale ? row_scale + o0 : nullptr;
            const float* bi = bias ? bias + o0 : nullptr;
            if (np == 2)
              panel_tiles_pair<T>(rows, xr, ldx, pk, stride, kb, yr, ldy, valid, first, last, sc, bi);
            else
              panel_rows<T>(rows, xr, ldx, pk, stride, kb, yr, ldy, valid, first, last, sc, bi, pf, pf_per_k,
                            pf + pf_lines * 64);
          }
        }
      }
    });
  }
}

}  // namespace

void linear(const float* x, int n, const Matrix& w, const float* bias, float* y) {
  if (n <= 0) return;
  switch (w.format()) {
    case WeightFormat::F32:
      linear_panels(x, n, w, w.f32(), bias, y);
      return;
    case WeightFormat::BF16:
      linear_panels(x, n, w, w.bf16(), bias, y);
      return;
    case WeightFormat::Int8:
      linear_panels(x, n, w, w.i8(), bias, y);
      return;
  }
}

void linear_gathered(const float* x, std::span<const int> rows, const Matrix& w, std::vector<float>& scratch,
                     float* y) {
  const size_t width = static_cast<size_t>(w.in());
  scratch.resize(rows.size() * width);
  for (size_t i = 0; i < rows.size(); ++i)
    std::copy_n(x + static_cast<size_t>(rows[i]) * width, width, scratch.data() + i * width);
  linear(scratch.data(), static_cast<int>(rows.size()), w, nullptr, y);
}

namespace {

#if defined(__AVX512F__)
// One vector of 16 sums from 16 vectors: lane j of the result is the sum of the lanes of a[j].
// A transpose-and-add tree (pairs within 128-bit lanes, then pairs of pairs, then across the four
// 128-bit lanes): 45 shuffles and adds instead of 16 horizontal sums of 8 operations each.
inline __m512 sum_lanes16(const __m512 (&a)[16]) {
  __m512 b[8], c[4];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i)  // per 128-bit lane: a[2i] (0+2), a[2i+1] (0+2), a[2i] (1+3), a[2i+1] (1+3)
    b[i] = _mm512_add_ps(_mm512_maskz_unpacklo_ps(kAll, a[2 * i], a[2 * i + 1]),
                         _mm512_maskz_unpackhi_ps(kAll, a[2 * i], a[2 * i + 1]));
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {  // per 128-bit lane: a[4i] .. a[4i+3], each summed over the lane
    const __m512d x = _mm512_castps_pd(b[2 * i]), y = _mm512_castps_pd(b[2 * i + 1]);
    c[i] = _mm512_add_ps(_mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xff, x, y)),
                         _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xff, x, y)));
  }
  // Across 128-bit lanes: lane i of the result gathers c[i]'s four lanes.
  const __m512 d0 = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAll, c[0], c[1], _MM_SHUFFLE(2, 0, 2, 0)),
                                  _mm512_maskz_shuffle_f32x4(kAll, c[0], c[1], _MM_SHUFFLE(3, 1, 3, 1)));
  const __m512 d1 = _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAll, c[2], c[3], _MM_SHUFFLE(2, 0, 2, 0)),
                                  _mm512_maskz_shuffle_f32x4(kAll, c[2], c[3], _MM_SHUFFLE(3, 1, 3, 1)));
  return _mm512_add_ps(_mm512_maskz_shuffle_f32x4(kAll, d0, d1, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_maskz_shuffle_f32x4(kAll, d0, d1, _MM_SHUFFLE(3, 1, 3, 1)));
}

inline __mmask16 tail_mask(int lanes) { return static_cast<__mmask16>((1u << lanes) - 1u); }

#elif defined(__AVX2__) && defined(__FMA__)
// sum_lanes16 for 8 vectors of 8: lane j of the result is the sum of the lanes of a[j].
inline __m256 sum_lanes8(const __m256 (&a)[8]) {
  const __m256 b0 = _mm256_hadd_ps(a[0], a[1]), b1 = _mm256_hadd_ps(a[2], a[3]);
  const __m256 b2 = _mm256_hadd_ps(a[4], a[5]), b3 = _mm256_hadd_ps(a[6], a[7]);
  const __m256 c0 = _mm256_hadd_ps(b0, b1), c1 = _mm256_hadd_ps(b2, b3);  // per 128-bit half: a[0..3], a[4..7]
  return _mm256_add_ps(_mm256_permute2f128_ps(c0, c1, 0x20), _mm256_permute2f128_ps(c0, c1, 0x31));
}
#endif

inline float softcap_value(float s, float cap) { return std::tanh(s / cap) * cap; }

// One query head over keys/values [len, hd] (rows hd apart): out = softmax(scale q.k) @ v (scores
// soft-capped first when softcap > 0).
// Plain loops: heads of more than 128 dims (AVX2: other than 128), and CPUs without AVX2.
void attend_head_plain(const float* q, const float* k, const float* v, int len, int hd, float scale, float softcap,
                       float* scores, float* out) {
  float mx = -INFINITY;
  for (int t = 0; t < len; ++t) {
    const float* kt = k + static_cast<size_t>(t) * hd;
    float d = 0.0f;
    for (int i = 0; i < hd; ++i) d += q[i] * kt[i];
    scores[t] = d * scale;
    if (softcap > 0.0f) scores[t] = softcap_value(scores[t], softcap);
    mx = std::max(mx, scores[t]);
  }
  float sum = 0.0f;
  for (int t = 0; t < len; ++t) sum += (scores[t] = std::exp(scores[t] - mx));
  const float inv = 1.0f / sum;
  std::fill_n(out, hd, 0.0f);
  for (int t = 0; t < len; ++t) {
    const float* vt = v + static_cast<size_t>(t) * hd;
    for (int i = 0; i < hd; ++i) out[i] += scores[t] * inv * vt[i];
  }
}

#if defined(__AVX512F__)
// The same for a head of NV 16-float vectors (the last may be partial), q and the output sums in
// registers. Scores are taken 16 keys at a time (each key's products in 16 lanes, then
// sum_lanes16), so a key costs NV FMAs plus ~3 shuffles/adds; values are summed in key order.
template <int NV>
void attend_head_avx512(const float* q, const float* k, const float* v, int len, int hd, float scale, float softcap,
                        float* scores, float* out) {
  const __mmask16 last = tail_mask(hd - 16 * (NV - 1));
  __mmask16 m[NV];
  __m512 qv[NV];
#pragma GCC unroll 8
  for (int i = 0; i < NV; ++i) {
    m[i] = i + 1 < NV ? kAll : last;
    qv[i] = _mm512_maskz_loadu_ps(m[i], q + 16 * i);
  }
  __m512 maxv = _mm512_set1_ps(-INFINITY);
  for (int t0 = 0; t0 < len; t0 += 16) {
    const int n = std::min(16, len - t0);
    __m512 acc[16];
#pragma GCC unroll 16
    for (int j = 0; j < 16; ++j) {
      acc[j] = _mm512_setzero_ps();
      if (j >= n) continue;
      const float* kt = k + static_cast<size_t>(t0 + j) * hd;
#pragma GCC unroll 8
      for (int i = 0; i < NV; ++i) acc[j] = _mm512_fmadd_ps(qv[i], _mm512_maskz_loadu_ps(m[i], kt + 16 * i), acc[j]);
    }
    const __mmask16 mt = tail_mask(n);
    const __m512 sc = _mm512_mul_ps(sum_lanes16(acc), _mm512_set1_ps(scale));
    _mm512_mask_storeu_ps(scores + t0, mt, sc);
    maxv = _mm512_mask_max_ps(maxv, mt, maxv, sc);
  }
  if (softcap > 0.0f) {  // Gemma-2: a tanh per score (a small share of a step), then the max again
    float capped_max = -INFINITY;
    for (int t = 0; t < len; ++t) {
      scores[t] = softcap_value(scores[t], softcap);
      capped_max = std::max(capped_max, scores[t]);
    }
    maxv = _mm512_set1_ps(capped_max);
  }
  const __m512 mx = _mm512_set1_ps(hmax(maxv));
  __m512 sumv = _mm512_setzero_ps();
  for (int t0 = 0; t0 < len; t0 += 16) {
    const __mmask16 mt = tail_mask(std::min(16, len - t0));
    const __m512 e = exp16(_mm512_sub_ps(_mm512_maskz_loadu_ps(mt, scores + t0), mx));
    _mm512_mask_storeu_ps(scores + t0, mt, e);
    sumv = _mm512_mask_add_ps(sumv, mt, sumv, e);
  }
  const float inv = 1.0f / hsum(sumv);
  __m512 o[NV];
#pragma GCC unroll 8
  for (int i = 0; i < NV; ++i) o[i] = _mm512_setzero_ps();
  for (int t = 0; t < len; ++t) {
    const __m512 p = _mm512_set1_ps(scores[t] * inv);
    const float* vt = v + static_cast<size_t>(t) * hd;
#pragma GCC unroll 8
    for (int i = 0; i < NV; ++i) o[i] = _mm512_fmadd_ps(p, _mm512_maskz_loadu_ps(m[i], vt + 16 * i), o[i]);
  }
#pragma GCC unroll 8
  for (int i = 0; i < NV; ++i) _mm512_mask_storeu_ps(out + 16 * i, m[i], o[i]);
}
#endif

#if !defined(__AVX512F__) && defined(__AVX2__) && defined(__FMA__)
// attend_head_avx512 in 8-float vectors: scores 8 keys at a time (sum_lanes8), values in key order.
template <int NV>
void attend_head_avx2(const float* q, const float* k, const float* v, int len, int hd, float scale, float softcap,
                      float* scores, float* out) {
  const int last = hd - 8 * (NV - 1);
  const __m256i mlast = lane_mask(last);
  auto load = [&](const float* p, int i) { return i + 1 < NV ? _mm256_loadu_ps(p + 8 * i) : load_lanes(p + 8 * i, last, mlast); };
  __m256 qv[NV];
#pragma GCC unroll 16
  for (int i = 0; i < NV; ++i) qv[i] = load(q, i);
  __m256 maxv = _mm256_set1_ps(-INFINITY);
  for (int t0 = 0; t0 < len; t0 += 8) {
    const int n = std::min(8, len - t0);
    __m256 acc[8];
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      acc[j] = _mm256_setzero_ps();
      if (j >= n) continue;
      const float* kt = k + static_cast<size_t>(t0 + j) * hd;
#pragma GCC unroll 16
      for (int i = 0; i < NV; ++i) acc[j] = _mm256_fmadd_ps(qv[i], load(kt, i), acc[j]);
    }
    const __m256 sc = _mm256_mul_ps(sum_lanes8(acc), _mm256_set1_ps(scale));
    store_lanes(scores + t0, n, lane_mask(n), sc);
    maxv = _mm256_max_ps(maxv, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), sc, _mm256_castsi256_ps(lane_mask(n))));
  }
  if (softcap > 0.0f) {  // Gemma-2: a tanh per score, then the max again (as attend_head_avx512)
    maxv = _mm256_set1_ps(-INFINITY);
    for (int t = 0; t < len; ++t) {
      scores[t] = softcap_value(scores[t], softcap);
      maxv = _mm256_max_ps(maxv, _mm256_set1_ps(scores[t]));
    }
  }
  const __m256 mx = _mm256_set1_ps(hmax(maxv));
  __m256 sumv = _mm256_setzero_ps();
  for (int t0 = 0; t0 < len; t0 += 8) {
    const int n = std::min(8, len - t0);
    const __m256i mt = lane_mask(n);
    const __m256 e = _mm256_and_ps(exp8(_mm256_sub_ps(load_lanes(scores + t0, n, mt), mx)), _mm256_castsi256_ps(mt));
    store_lanes(scores + t0, n, mt, e);
    sumv = _mm256_add_ps(sumv, e);
  }
  const float inv = 1.0f / hsum(sumv);
  __m256 o[NV];
#pragma GCC unroll 16
  for (int i = 0; i < NV; ++i) o[i] = _mm256_setzero_ps();
  for (int t = 0; t < len; ++t) {
    const __m256 p = _mm256_set1_ps(scores[t] * inv);
    const float* vt = v + static_cast<size_t>(t) * hd;
#pragma GCC unroll 16
    for (int i = 0; i < NV; ++i) o[i] = _mm256_fmadd_ps(p, load(vt, i), o[i]);
  }
#pragma GCC unroll 16
  for (int i = 0; i < NV; ++i) store_lanes(out + 8 * i, i + 1 < NV ? 8 : last, mlast, o[i]);
}
#endif

// Picks the kernel for the head size.
void attend_head(const float* q, const float* k, const float* v, int len, int hd, float scale, float softcap,
                 float* scores, float* out) {
#if defined(__AVX512F__)
  switch ((hd + 15) / 16) {
    case 1: return attend_head_avx512<1>(q, k, v, len, hd, scale, softcap, scores, out);
    case 2: return attend_head_avx512<2>(q, k, v, len, hd, scale, softcap, scores, out);
    case 3: return attend_head_avx512<3>(q, k, v, len, hd, scale, softcap, scores, out);
    case 4: return attend_head_avx512<4>(q, k, v, len, hd, scale, softcap, scores, out);
    case 5: return attend_head_avx512<5>(q, k, v, len, hd, scale, softcap, scores, out);
    case 6: return attend_head_avx512<6>(q, k, v, len, hd, scale, softcap, scores, out);
    case 7: return attend_head_avx512<7>(q, k, v, len, hd, scale, softcap, scores, out);
    case 8: return attend_head_avx512<8>(q, k, v, len, hd, scale, softcap, scores, out);
    default: break;
  }
#elif defined(__AVX2__) && defined(__FMA__)
  switch ((hd + 7) / 8) {
    case 1: return attend_head_avx2<1>(q, k, v, len, hd, scale, softcap, scores, out);
    case 2: return attend_head_avx2<2>(q, k, v, len, hd, scale, softcap, scores, out);
    case 3: return attend_head_avx2<3>(q, k, v, len, hd, scale, softcap, scores, out);
    case 4: return attend_head_avx2<4>(q, k, v, len, hd, scale, softcap, scores, out);
    case 5: return attend_head_avx2<5>(q, k, v, len, hd, scale, softcap, scores, out);
    case 6: return attend_head_avx2<6>(q, k, v, len, hd, scale, softcap, scores, out);
    case 7: return attend_head_avx2<7>(q, k, v, len, hd, scale, softcap, scores, out);
    case 8: return attend_head_avx2<8>(q, k, v, len, hd, scale, softcap, scores, out);
    case 16: return attend_head_avx2<16>(q, k, v, len, hd, scale, softcap, scores, out);
    default: break;
  }
#endif
  attend_head_plain(q, k, v, len, hd, scale, softcap, scores, out);
}

void check_position(const RowInfo& row, const KVCache& cache) {
  const int cap = cache.capacity(row.seq);
  if (row.pos < 0 || row.pos >= cap)
    throw Error("position " + std::to_string(row.pos) + " is past the KV cache of sequence " +
                std::to_string(row.seq) + " (" + std::to_string(cap) + " positions)");
}

// Copies row r's key and value of KV head h (k, v: [rows, n_kv_head * head_dim], rows ld floats
// apart) into the cache at the row's position.
void store_kv_head(const float* k, const float* v, size_t ld, std::span<const RowInfo> rows, size_t r, int h,
                   KVCache& cache, int layer, int head_dim) {
  const RowInfo& row = rows[r];
  const size_t src = r * ld + static_cast<size_t>(h) * head_dim;
  const size_t dst = (static_cast<size_t>(h) * cache.capacity(row.seq) + row.pos) * head_dim;
  std::copy_n(k + src, head_dim, cache.k(row.seq, layer) + dst);
  std::copy_n(v + src, head_dim, cache.v(row.seq, layer) + dst);
}

#if defined(__AVX512F__)
inline double hsum_pd(__m512d v) {
  const __m256d s = _mm256_add_pd(_mm512_maskz_extractf64x4_pd(0xf, v, 0), _mm512_maskz_extractf64x4_pd(0xf, v, 1));
  const __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}
#elif defined(__AVX2__) && defined(__FMA__)
// hsum_pd of the 8 lanes lo | hi, in the same order.
inline double hsum_pd(__m256d lo, __m256d hi) {
  const __m256d s = _mm256_add_pd(lo, hi);
  const __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
  return _mm_cvtsd_f64(_mm_add_sd(t, _mm_unpackhi_pd(t, t)));
}
#endif

// sum_i x[i] and sum_i (x[i] - mean)^2 (the difference in float, its square summed in double), in
// 8 double lanes then across them (AVX-512, or two AVX2 vectors of 4 in the same order; the plain
// loops otherwise).
double sum_double(const float* x, int n) {
  double s = 0.0;
  int i = 0;
#if defined(__AVX512F__)
  __m512d acc = _mm512_setzero_pd();
  for (; i + 8 <= n; i += 8) acc = _mm512_add_pd(acc, _mm512_maskz_cvtps_pd(0xff, _mm256_loadu_ps(x + i)));
  s = hsum_pd(acc);
#elif defined(__AVX2__) && defined(__FMA__)
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  for (; i + 8 <= n; i += 8) {
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm_loadu_ps(x + i)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm_loadu_ps(x + i + 4)));
  }
  s = hsum_pd(lo, hi);
#endif
  for (; i < n; ++i) s += x[i];
  return s;
}

double sum_sq_dev(const float* x, int n, float mean) {
  double s = 0.0;
  int i = 0;
#if defined(__AVX512F__)
  __m512d acc = _mm512_setzero_pd();
  const __m256 m = _mm256_set1_ps(mean);
  for (; i + 8 <= n; i += 8) {
    const __m512d d = _mm512_maskz_cvtps_pd(0xff, _mm256_sub_ps(_mm256_loadu_ps(x + i), m));
    acc = _mm512_fmadd_pd(d, d, acc);
  }
  s = hsum_pd(acc);
#elif defined(__AVX2__) && defined(__FMA__)
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  const __m256 m = _mm256_set1_ps(mean);
  for (; i + 8 <= n; i += 8) {
    const __m256 d = _mm256_sub_ps(_mm256_loadu_ps(x + i), m);
    const __m256d dlo = _mm256_cvtps_pd(_mm256_castps256_ps128(d)), dhi = _mm256_cvtps_pd(_mm256_extractf128_ps(d, 1));
    lo = _mm256_fmadd_pd(dlo, dlo, lo);
    hi = _mm256_fmadd_pd(dhi, dhi, hi);
  }
  s = hsum_pd(lo, hi);
#endif
  for (; i < n; ++i) {
    const double d = x[i] - mean;
    s += d * d;
  }
  return s;
}

}  // namespace

void layer_norm(const float* x, int n, int width, const float* w, const float* b, float eps, float* y) {
  for (int r = 0; r < n; ++r) {
    const float* xr = x + static_cast<size_t>(r) * width;
    float* yr = y + static_cast<size_t>(r) * width;
    const float mean = static_cast<float>(sum_double(xr, width) / width);
    const double var = sum_sq_dev(xr, width, mean);
    const float inv = 1.0f / std::sqrt(static_cast<float>(var / width) + eps);
    for (int i = 0; i < width; ++i) yr[i] = (xr[i] - mean) * inv * w[i] + b[i];
  }
}

void rms_norm(const float* x, int n, int width, const float* w, float eps, float* y) {
  for (int r = 0; r < n; ++r) {
    const float* xr = x + static_cast<size_t>(r) * width;
    float* yr = y + static_cast<size_t>(r) * width;
    const double ss = sum_sq_dev(xr, width, 0.0f);
    const float inv = 1.0f / std::sqrt(static_cast<float>(ss / width) + eps);
    for (int i = 0; i < width; ++i) yr[i] = w[i] * (xr[i] * inv);
  }
}

void gelu_tanh(float* x, size_t count) {
  // 0.5 v (1 + tanh(u)) = v / (1 + e^(-2u)), u = sqrt(2/pi) (v + 0.044715 v^3): one exp instead of
  // a tanh (the same function; the two forms differ by float32 rounding).
  constexpr float k2 = -2.0f * 0.7978845608028654f;  // -2 sqrt(2/pi)
#if defined(__AVX512F__)
  map16(x, count, [&](__m512 v) {
    const __m512 v3 = _mm512_mul_ps(_mm512_mul_ps(v, v), v);
    const __m512 u = _mm512_mul_ps(_mm512_set1_ps(k2), _mm512_fmadd_ps(_mm512_set1_ps(0.044715f), v3, v));
    return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp16(u)));
  });
#elif defined(__AVX2__) && defined(__FMA__)
  map8(x, count, [&](__m256 v) {
    const __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
    const __m256 u = _mm256_mul_ps(_mm256_set1_ps(k2), _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), v3, v));
    return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(u)));
  });
#else
  for (size_t i = 0; i < count; ++i) {
    const float v = x[i];
    x[i] = v / (1.0f + std::exp(k2 * (v + 0.044715f * v * v * v)));
  }
#endif
}

void add_inplace(float* y, const float* x, size_t count) {
  for (size_t i = 0; i < count; ++i) y[i] += x[i];
}

void attention(const float* q, size_t ldq, const float* k, const float* v, size_t ldkv,
               std::span<const RowInfo> rows, KVCache& cache, int layer, int n_head, int n_kv_head, int head_dim,
               float* out, const AttentionOptions& options) {
  const int q_dim = n_head * head_dim;
  if (ldq == 0) ldq = static_cast<size_t>(q_dim);
  if (ldkv == 0) ldkv = static_cast<size_t>(n_kv_head) * head_dim;
  const int group = n_head / n_kv_head;
  const float scale = options.scale > 0.0f ? options.scale : 1.0f / std::sqrt(static_cast<float>(head_dim));
  for (const RowInfo& row : rows) check_position(row, cache);
  // A row whose sequence has no other row in the step (decode) writes its own key and value
  // inside its task, in parallel and just before reading them back (12 layers at batch 45,
  // position 60: 5.0 ms, against 6.0 ms with every store made first on the caller's thread);
  // rows of a prompt read each other's positions, so theirs are all written first.
  thread_local std::vector<int> seqs;
  seqs.clear();
  for (const RowInfo& row : rows) seqs.push_back(row.seq);
  std::sort(seqs.begin(), seqs.end());
  auto alone = [&](const RowInfo& row) {
    const auto [lo, hi] = std::equal_range(seqs.begin(), seqs.end(), row.seq);
    return hi - lo == 1;
  };
  thread_local std::vector<char> stores_itself_buf;  // (the pool's threads read it through the pointer)
  stores_itself_buf.assign(rows.size(), 0);
  char* const stores_itself = stores_itself_buf.data();
  for (size_t r = 0; r < rows.size(); ++r) {
    stores_itself[r] = alone(rows[r]);
    if (!stores_itself[r])
      for (int h = 0; h < n_kv_head; ++h) store_kv_head(k, v, ldkv, rows, r, h, cache, layer, head_dim);
  }
  // One task per (row, KV head), spread over the pool: it reads that head's keys and values in
  // place for each of its query heads. A small step (a few rows over a short context) runs on the
  // caller: waking the pool would cost more than the work.
  const size_t tasks = rows.size() * static_cast<size_t>(n_kv_head);
  size_t positions = 0;
  for (const RowInfo& row : rows) positions += static_cast<size_t>(row.pos) + 1;
  const bool small = positions * static_cast<size_t>(q_dim) < (size_t{1} << 16);
  const size_t grain =
      small ? tasks : std::max<size_t>(1, tasks / (8 * static_cast<size_t>(thread_pool().size())));
  thread_pool().parallel_for(tasks, grain, [&](size_t b, size_t e) {
    thread_local std::vector<float> scores;
    for (size_t task = b; task < e; ++task) {
      const size_t r = task / static_cast<size_t>(n_kv_head);
      const int kvh = static_cast<int>(task % static_cast<size_t>(n_kv_head));
      const RowInfo& row = rows[r];
      const int first = options.window > 0 ? std::max(0, row.pos - options.window + 1) : 0;
      const int len = row.pos + 1 - first;
      const size_t kv_off = (static_cast<size_t>(kvh) * cache.capacity(row.seq) + first) * head_dim;
      const float* kc = cache.k(row.seq, layer) + kv_off;
      const float* vc = cache.v(row.seq, layer) + kv_off;
      scores.resize(static_cast<size_t>(len));
      if (stores_itself[r]) store_kv_head(k, v, ldkv, rows, r, kvh, cache, layer, head_dim);
      for (int h = kvh * group; h < (kvh + 1) * group; ++h)
        attend_head(q + r * ldq + h * head_dim, kc, vc, len, head_dim, scale, options.softcap, scores.data(),
                    out + r * q_dim + h * head_dim);
    }
  });
}

}  // namespace nt

// ---- Llama family: RoPE and SwiGLU ------------------------------------------------------------
// (Kept together at the end of the file; added with the Llama architecture.)

namespace nt {

std::vector<float> rope_inv_freq(int head_dim, float theta, const RopeScaling& scaling) {
  const int half = head_dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  // transformers: 1.0 / (base ** (arange(0, dim, 2).float() / dim)), all float32.
  for (int j = 0; j < half; ++j) {
    const float e = static_cast<float>(2 * j) / static_cast<float>(head_dim);
    inv[static_cast<size_t>(j)] = 1.0f / std::pow(theta, e);
  }
  switch (scaling.type) {
    case RopeScalingType::None:
      break;
    case RopeScalingType::Linear:
      for (float& f : inv) f /= scaling.factor;
      break;
    case RopeScalingType::Llama3: {
      // transformers' _compute_llama3_parameters, in float32 (x / t on a tensor t is computed
      // there as reciprocal(t) * x).
      const float factor = scaling.factor;
      const float lo = scaling.low_freq_factor, hi = scaling.high_freq_factor;
      const float old_ctx = static_cast<float>(scaling.original_max_position_embeddings);
      // Python floats compared with a float32 tensor are rounded to float32 first.
      const float low_freq_wavelen = static_cast<float>(static_cast<double>(old_ctx) / lo);
      const float high_freq_wavelen = static_cast<float>(static_cast<double>(old_ctx) / hi);
      const float two_pi = static_cast<float>(2.0 * M_PI);
      for (float& f : inv) {
        const float wavelen = (1.0f / f) * two_pi;
        float scaled = wavelen > low_freq_wavelen ? f / factor : f;
        if (!(wavelen < high_freq_wavelen) && !(wavelen > low_freq_wavelen)) {
          const float smooth = ((1.0f / wavelen) * old_ctx - lo) / (hi - lo);
          scaled = (1.0f - smooth) * scaled / factor + smooth * scaled;
        }
        f = scaled;
      }
      break;
    }
  }
  return inv;
}

void rope(float* q, int n_q_head, float* k, int n_k_head, std::span<const RowInfo> rows, int head_dim,
          const float* inv_freq) {
  const int half = head_dim / 2;
  std::vector<float> cs(static_cast<size_t>(head_dim));  // cos[0..half) | sin[0..half)
  auto rotate = [&](float* u) {
    for (int j = 0; j < half; ++j) {
      const float c = cs[static_cast<size_t>(j)], s = cs[static_cast<size_t>(half + j)];
      const float a = u[j], b = u[j + half];
      u[j] = a * c - b * s;
      u[j + half] = b * c + a * s;
    }
  };
  for (size_t r = 0; r < rows.size(); ++r) {
    const float p = static_cast<float>(rows[r].pos);
    for (int j = 0; j < half; ++j) {
      const float angle = p * inv_freq[j];
      cs[static_cast<size_t>(j)] = std::cos(angle);
      cs[static_cast<size_t>(half + j)] = std::sin(angle);
    }
    for (int h = 0; h < n_q_head; ++h) rotate(q + (r * n_q_head + h) * head_dim);
    for (int h = 0; h < n_k_head; ++h) rotate(k + (r * n_k_head + h) * head_dim);
  }
}

void silu(float* x, size_t count) {
#if defined(__AVX512F__)
  map16(x, count, [](__m512 v) {
    return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp16(_mm512_sub_ps(_mm512_setzero_ps(), v))));
  });
#elif defined(__AVX2__) && defined(__FMA__)
  map8(x, count, [](__m256 v) {
    return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(_mm256_sub_ps(_mm256_setzero_ps(), v))));
  });
#else
  for (size_t i = 0; i < count; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
#endif
}

void silu_mul(float* gate, const float* up, size_t count) {
  silu(gate, count);
  for (size_t i = 0; i < count; ++i) gate[i] *= up[i];
}

}  // namespace nt
