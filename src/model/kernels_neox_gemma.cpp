#include "model/kernels_neox_gemma.h"

#include <cmath>

#include "model/kernels.h"

namespace nt {

void gelu_erf(float* x, size_t count) {
  // torch: x * 0.5 * (1 + erf(x * M_SQRT1_2))
  constexpr float kSqrtHalf = 0.70710678118654752440f;
  for (size_t i = 0; i < count; ++i) x[i] = x[i] * 0.5f * (1.0f + std::erf(x[i] * kSqrtHalf));
}

void gelu_tanh_mul(float* gate, const float* up, size_t count) {
  gelu_tanh(gate, count);
  for (size_t i = 0; i < count; ++i) gate[i] *= up[i];
}

void softcap(float* x, size_t count, float cap) {
  for (size_t i = 0; i < count; ++i) x[i] = std::tanh(x[i] / cap) * cap;
}

void rope_partial(float* x, size_t ld, int n_head, std::span<const RowInfo> rows, int head_dim, int rotary_dims,
                  const float* inv_freq) {
  const int half = rotary_dims / 2;
  std::vector<float> cos_a(static_cast<size_t>(half)), sin_a(static_cast<size_t>(half));
  for (size_t r = 0; r < rows.size(); ++r) {
    const float p = static_cast<float>(rows[r].pos);
    for (int j = 0; j < half; ++j) {
      const float angle = p * inv_freq[j];
      cos_a[static_cast<size_t>(j)] = std::cos(angle);
      sin_a[static_cast<size_t>(j)] = std::sin(angle);
    }
    for (int h = 0; h < n_head; ++h) {
      float* u = x + r * ld + static_cast<size_t>(h) * head_dim;
      for (int j = 0; j < half; ++j) {
        const float c = cos_a[static_cast<size_t>(j)], s = sin_a[static_cast<size_t>(j)];
        const float a = u[j], b = u[j + half];
        u[j] = a * c - b * s;
        u[j + half] = b * c + a * s;
      }
    }
  }
}

std::vector<float> one_plus(const float* w, size_t count) {
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = 1.0f + w[i];
  return out;
}

}  // namespace nt
