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
