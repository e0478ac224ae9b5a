#include "model/kernels.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#if defined(__AVX512F__)
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

// out[r * ldo + g] = sum_i x[r * ldx + i] * w[g * ldw + i] for R rows of x and G stored weight rows,
// R x G float32 accumulators in registers. The weight rows are zero-padded to a multiple of 16
// (Matrix::ld), so only x needs a mask at the tail. With `prefetch`, the G rows after these are
// prefetched as these are read (they must belong to the same thread's task: prefetching rows
// another thread is streaming costs more than it saves).
template <class T, int R, int G>
void dot_tile(const float* x, size_t ldx, const T* w, size_t ldw, int in, float* out, size_t ldo, bool prefetch) {
  __m512 acc[R][G];
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) acc[r][g] = _mm512_setzero_ps();
  auto step = [&](int i, __mmask16 mask) {
    __m512 wv[G];
    // Software prefetch of the same cache line of the next G stored rows (what the next tile
    // reads): with G rows streamed at once the hardware prefetchers alone leave ~30% of one core's
    // bandwidth unused.
    if (prefetch && i % (64 / sizeof(T)) == 0)
#pragma GCC unroll 16
      for (int g = 0; g < G; ++g) _mm_prefetch(reinterpret_cast<const char*>(w + (g + G) * ldw + i), _MM_HINT_T0);
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) wv[g] = widen16(w + g * ldw + i);
#pragma GCC unroll 16
    for (int r = 0; r < R; ++r) {
      const __m512 xv = _mm512_maskz_loadu_ps(mask, x + r * ldx + i);
#pragma GCC unroll 16
      for (int g = 0; g < G; ++g) acc[r][g] = _mm512_fmadd_ps(xv, wv[g], acc[r][g]);
    }
  };
  int i = 0;
  for (; i + 16 <= in; i += 16) step(i, kAll);
  if (i < in) step(i, static_cast<__mmask16>((1u << (in - i)) - 1u));
#pragma GCC unroll 16
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 16
    for (int g = 0; g < G; ++g) out[r * ldo + g] = hsum(acc[r][g]);
}

#else
inline float widen1(uint16_t h) { return bf16_to_float(h); }
inline float widen1(int8_t q) { return static_cast<float>(q); }
inline float widen1(float f) { return f; }

template <class T, int R, int G>
void dot_tile(const float* x, size_t ldx, const T* w, size_t ldw, int in, float* out, size_t ldo, bool) {
  for (int r = 0; r < R; ++r)
    for (int g = 0; g < G; ++g) {
      const float* xr = x + r * ldx;
      const T* wg = w + g * ldw;
      float acc = 0.0f;
      for (int i = 0; i < in; ++i) acc += xr[i] * widen1(wg[i]);
      out[r * ldo + g] = acc;
    }
}

// Without AVX-512, float32 weights go through OpenBLAS: y = x @ w^T (+ bias).
void linear_blas(const float* x, int n, const Matrix& w, const float* bias, float* y) {
  const int out = w.out();
  float beta = 0.0f;
  if (bias) {
    for (int r = 0; r < n; ++r) std::copy(bias, bias + out, y + static_cast<size_t>(r) * out);
    beta = 1.0f;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, w.in(), 1.0f, x, w.in(), w.f32(),
              static_cast<int>(w.ld()), beta, y, out);
}
#endif

// Rows [o0, o1) of y for all n rows of x: blocks of 8 stored rows, x in runs of up to 4 rows, so
// each block of weights comes from memory once and from L1 for the other runs of x. Only the
// first run over a block prefetches the next block (within [o0, o1)).
template <class T>
void stream_rows(const float* x, int n, int in, const T* w, size_t ld, int o0, int o1, float* y, int out) {
  const size_t ldx = static_cast<size_t>(in), ldo = static_cast<size_t>(out);
  int o = o0;
  for (; o + 8 <= o1; o += 8) {
    const T* wo = w + static_cast<size_t>(o) * ld;
    const bool next = o + 16 <= o1;  // the next block of 8 rows is this task's too
    int r = 0;
    for (; r + 4 <= n; r += 4) {
      dot_tile<T, 4, 4>(x + r * ldx, ldx, wo, ld, in, y + r * ldo + o, ldo, r == 0);
      dot_tile<T, 4, 4>(x + r * ldx, ldx, wo + 4 * ld, ld, in, y + r * ldo + o + 4, ldo, r == 0 && next);
    }
    switch (n - r) {
      case 3:
        dot_tile<T, 3, 4>(x + r * ldx, ldx, wo, ld, in, y + r * ldo + o, ldo, r == 0);
        dot_tile<T, 3, 4>(x + r * ldx, ldx, wo + 4 * ld, ld, in, y + r * ldo + o + 4, ldo, r == 0 && next);
        break;
      case 2:
        dot_tile<T, 2, 8>(x + r * ldx, ldx, wo, ld, in, y + r * ldo + o, ldo, r == 0 && next);
        break;
      case 1:
        dot_tile<T, 1, 8>(x + r * ldx, ldx, wo, ld, in, y + r * ldo + o, ldo, r == 0 && next);
        break;
      default:
        break;
    }
  }
  for (; o < o1; ++o) {
    const T* wo = w + static_cast<size_t>(o) * ld;
    int r = 0;
    for (; r + 4 <= n; r += 4) dot_tile<T, 4, 1>(x + r * ldx, ldx, wo, ld, in, y + r * ldo + o, ldo, false);
    switch (n - r) {
      case 3:
        dot_tile<T, 3, 1>(x + r * ldx, ldx, wo, ld, in, y + r * ldo + o, ldo, false);
        break;
      case 2:
        dot_tile<T, 2, 1>(x + r * ldx, ldx, wo, ld, in, y + r * ldo + o, ldo, false);
        break;
      case 1:
        dot_tile<T, 1, 1>(x + r * ldx, ldx, wo, ld, in, y + r * ldo + o, ldo, false);
        break;
      default:
        break;
    }
  }
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
void linear_rows(const float* x, int n, const Matrix& w, const T* data, const float* bias, float* y) {
  const int in = w.in(), out = w.out();
  const size_t ld = w.ld();
  const float* xs = w.scales_input() ? scale_columns(x, n, in, w.scales()) : x;
  const float* row_scale = w.format() == WeightFormat::Int8 && !w.scales_input() ? w.scales() : nullptr;
  // Tasks of contiguous stored rows (a multiple of 8), about 4 per thread but 32-512 KiB, handed
  // out dynamically. Long runs matter: with 32 KiB tasks two threads read ~36 GB/s, with 512 KiB
  // ~55 GB/s (GPT-2-small shapes, bf16); 4 per thread keeps a late thread from holding up the end.
  const size_t row_bytes = ld * sizeof(T);
  const size_t per_task = static_cast<size_t>(out) * row_bytes / (4 * static_cast<size_t>(thread_pool().size()));
  const size_t task_bytes = std::clamp<size_t>(per_task, size_t{32} << 10, size_t{512} << 10);
  const int task_rows = static_cast<int>(std::max<size_t>(8, task_bytes / row_bytes / 8 * 8));
  const size_t tasks = static_cast<size_t>((out + task_rows - 1) / task_rows);
  // Rows of x in chunks of kStreamRows, so a chunk stays in L2 while the weights stream past.
  for (int r0 = 0; r0 < n; r0 += kStreamRows) {
    const int nr = std::min(kStreamRows, n - r0);
    const float* xc = xs + static_cast<size_t>(r0) * in;
    float* yc = y + static_cast<size_t>(r0) * out;
    thread_pool().parallel_for(tasks, 1, [&](size_t b, size_t e) {
      for (size_t t = b; t < e; ++t) {
        const int o0 = static_cast<int>(t) * task_rows, o1 = std::min(out, o0 + task_rows);
        stream_rows(xc, nr, in, data, ld, o0, o1, yc, out);
        if (!row_scale && !bias) continue;
        for (int r = 0; r < nr; ++r) {
          float* yr = yc + static_cast<size_t>(r) * out;
          for (int o = o0; o < o1; ++o) {
            float v = yr[o];
            if (row_scale) v *= row_scale[o];
            if (bias) v += bias[o];
            yr[o] = v;
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
#if defined(__AVX512F__)
      linear_rows(x, n, w, w.f32(), bias, y);
#else
      linear_blas(x, n, w, bias, y);
#endif
      return;
    case WeightFormat::BF16:
      linear_rows(x, n, w, w.bf16(), bias, y);
      return;
    case WeightFormat::Int8:
      linear_rows(x, n, w, w.i8(), bias, y);
      return;
  }
}

namespace {

// sum_i a[i] b[i], in 16 lanes (AVX-512) then added up.
float dot(const float* a, const float* b, int n) {
#if defined(__AVX512F__)
  __m512 acc = _mm512_setzero_ps();
  int i = 0;
  for (; i + 16 <= n; i += 16) acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), acc);
  if (i < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - i)) - 1u);
    acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), acc);
  }
  return hsum(acc);
#else
  float s = 0.0f;
  for (int i = 0; i < n; ++i) s += a[i] * b[i];
  return s;
#endif
}

// y[i] += a x[i]
void axpy(float a, const float* x, float* y, int n) {
  for (int i = 0; i < n; ++i) y[i] += a * x[i];
}

void exp_inplace(float* x, size_t count) {
#if defined(__AVX512F__)
  map16(x, count, exp16);
#else
  for (size_t i = 0; i < count; ++i) x[i] = std::exp(x[i]);
#endif
}

}  // namespace

void layer_norm(const float* x, int n, int width, const float* w, const float* b, float eps, float* y) {
  for (int r = 0; r < n; ++r) {
    const float* xr = x + static_cast<size_t>(r) * width;
    float* yr = y + static_cast<size_t>(r) * width;
    double sum = 0.0;
    for (int i = 0; i < width; ++i) sum += xr[i];
    const float mean = static_cast<float>(sum / width);
    double var = 0.0;
    for (int i = 0; i < width; ++i) {
      const double d = xr[i] - mean;
      var += d * d;
    }
    const float inv = 1.0f / std::sqrt(static_cast<float>(var / width) + eps);
    for (int i = 0; i < width; ++i) yr[i] = (xr[i] - mean) * inv * w[i] + b[i];
  }
}

void rms_norm(const float* x, int n, int width, const float* w, float eps, float* y) {
  for (int r = 0; r < n; ++r) {
    const float* xr = x + static_cast<size_t>(r) * width;
    float* yr = y + static_cast<size_t>(r) * width;
    double ss = 0.0;
    for (int i = 0; i < width; ++i) ss += static_cast<double>(xr[i]) * xr[i];
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

void store_kv(const float* k, const float* v, std::span<const RowInfo> rows, KVCache& cache, int layer,
              int n_kv_head, int head_dim) {
  const int kv_dim = n_kv_head * head_dim;
  for (size_t r = 0; r < rows.size(); ++r) {
    const RowInfo& row = rows[r];
    const int cap = cache.capacity(row.seq);
    if (row.pos < 0 || row.pos >= cap)
      throw Error("position " + std::to_string(row.pos) + " is past the KV cache of sequence " +
                  std::to_string(row.seq) + " (" + std::to_string(cap) + " positions)");
    float* kc = cache.k(row.seq, layer);
    float* vc = cache.v(row.seq, layer);
    for (int h = 0; h < n_kv_head; ++h) {
      const size_t dst = (static_cast<size_t>(h) * cap + row.pos) * head_dim;
      std::copy_n(k + r * kv_dim + h * head_dim, head_dim, kc + dst);
      std::copy_n(v + r * kv_dim + h * head_dim, head_dim, vc + dst);
    }
  }
}

void attention(const float* q, std::span<const RowInfo> rows, KVCache& cache, int layer, int n_head,
               int n_kv_head, int head_dim, float* out) {
  const int q_dim = n_head * head_dim;
  const int group = n_head / n_kv_head;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  // One task per (row, head), spread over the pool: each reads its keys and values in place. A
  // small step (a few rows over a short context) runs on the caller: waking the pool would cost
  // more than the work.
  const size_t tasks = rows.size() * static_cast<size_t>(n_head);
  size_t positions = 0;
  for (const RowInfo& row : rows) positions += static_cast<size_t>(row.pos) + 1;
  const bool small = positions * static_cast<size_t>(q_dim) < (size_t{1} << 16);
  const size_t grain =
      small ? tasks : std::max<size_t>(1, tasks / (8 * static_cast<size_t>(thread_pool().size())));
  thread_pool().parallel_for(tasks, grain, [&](size_t b, size_t e) {
    thread_local std::vector<float> scores;
    for (size_t task = b; task < e; ++task) {
      const size_t r = task / static_cast<size_t>(n_head);
      const int h = static_cast<int>(task % static_cast<size_t>(n_head));
      const RowInfo& row = rows[r];
      const int cap = cache.capacity(row.seq);
      const int len = row.pos + 1;
      scores.resize(static_cast<size_t>(len));
      const float* qh = q + r * q_dim + h * head_dim;
      const float* kh = cache.k(row.seq, layer) + static_cast<size_t>(h / group) * cap * head_dim;
      const float* vh = cache.v(row.seq, layer) + static_cast<size_t>(h / group) * cap * head_dim;
      float maxv = -INFINITY;
      for (int t = 0; t < len; ++t) {
        const float sc = dot(qh, kh + static_cast<size_t>(t) * head_dim, head_dim) * scale;
        scores[t] = sc;
        maxv = std::max(maxv, sc);
      }
      for (int t = 0; t < len; ++t) scores[t] -= maxv;
      exp_inplace(scores.data(), static_cast<size_t>(len));
      float sum = 0.0f;
      for (int t = 0; t < len; ++t) sum += scores[t];
      const float inv = 1.0f / sum;
      float* oh = out + r * q_dim + h * head_dim;
      std::fill_n(oh, head_dim, 0.0f);
      for (int t = 0; t < len; ++t) axpy(scores[t] * inv, vh + static_cast<size_t>(t) * head_dim, oh, head_dim);
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
#else
  for (size_t i = 0; i < count; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
#endif
}

void silu_mul(float* gate, const float* up, size_t count) {
  silu(gate, count);
  for (size_t i = 0; i < count; ++i) gate[i] *= up[i];
}

}  // namespace nt
