#include "model/kernels.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "util/error.h"

namespace nt {

void linear(const float* x, int n, int in, const float* w, WeightLayout layout, int out,
            const float* bias, float* y) {
  float beta = 0.0f;
  if (bias) {
    for (int r = 0; r < n; ++r) std::copy(bias, bias + out, y + static_cast<size_t>(r) * out);
    beta = 1.0f;
  }
  if (layout == WeightLayout::InOut) {
    if (n == 1)
      cblas_sgemv(CblasRowMajor, CblasTrans, in, out, 1.0f, w, out, x, 1, beta, y, 1);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, out, in, 1.0f, x, in, w, out, beta, y, out);
  } else {
    if (n == 1)
      cblas_sgemv(CblasRowMajor, CblasNoTrans, out, in, 1.0f, w, in, x, 1, beta, y, 1);
    else
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, out, in, 1.0f, x, in, w, in, beta, y, out);
  }
}

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
  const float k = 0.7978845608028654f;  // sqrt(2/pi)
  for (size_t i = 0; i < count; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(k * (v + 0.044715f * v * v * v)));
  }
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
  std::vector<float> scores;
  for (size_t r = 0; r < rows.size(); ++r) {
    const RowInfo& row = rows[r];
    const int cap = cache.capacity(row.seq);
    const int len = row.pos + 1;
    scores.resize(static_cast<size_t>(len));
    const float* kc = cache.k(row.seq, layer);
    const float* vc = cache.v(row.seq, layer);
    for (int h = 0; h < n_head; ++h) {
      const float* qh = q + r * q_dim + h * head_dim;
      const float* kh = kc + static_cast<size_t>(h / group) * cap * head_dim;
      const float* vh = vc + static_cast<size_t>(h / group) * cap * head_dim;
      float maxv = -INFINITY;
      for (int t = 0; t < len; ++t) {
        const float* kt = kh + static_cast<size_t>(t) * head_dim;
        float s = 0.0f;
        for (int i = 0; i < head_dim; ++i) s += qh[i] * kt[i];
        s *= scale;
        scores[t] = s;
        maxv = std::max(maxv, s);
      }
      float sum = 0.0f;
      for (int t = 0; t < len; ++t) {
        scores[t] = std::exp(scores[t] - maxv);
        sum += scores[t];
      }
      const float inv = 1.0f / sum;
      float* oh = out + r * q_dim + h * head_dim;
      std::fill_n(oh, head_dim, 0.0f);
      for (int t = 0; t < len; ++t) {
        const float p = scores[t] * inv;
        const float* vt = vh + static_cast<size_t>(t) * head_dim;
        for (int i = 0; i < head_dim; ++i) oh[i] += p * vt[i];
      }
    }
  }
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
  for (size_t i = 0; i < count; ++i) x[i] = x[i] / (1.0f + std::exp(-x[i]));
}

void silu_mul(float* gate, const float* up, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace nt
