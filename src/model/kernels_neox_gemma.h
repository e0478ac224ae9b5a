#pragma once
// Kernels of the GPT-NeoX (Pythia) and Gemma-2 forward passes that GPT-2 and Llama do not use:
// exact-erf GELU, GeGLU, softcapping, partial RoPE on strided heads, and Gemma's (1 + w) norm
// weights. All activations are row-major [rows, width].
#include <cstddef>
#include <span>
#include <vector>

#include "hooks/hooks.h"

namespace nt {

// gelu(x) = 0.5 x (1 + erf(x / sqrt(2))) (torch's default, exact GELU), in place.
void gelu_erf(float* x, size_t count);

// gate = gelu_tanh(gate) * up (Gemma's GeGLU MLP hidden), in place.
void gelu_tanh_mul(float* gate, const float* up, size_t count);

// x = cap * tanh(x / cap), in place (Gemma-2's final-logit softcapping).
void softcap(float* x, size_t count, float cap);

// Rotates the first `rotary_dims` values of each of n_head heads of each row by the row's position,
// rotate_half layout within those dims (half = rotary_dims / 2, a = pos * inv_freq[j]):
//   u'[j] = u[j] cos a - u[j + half] sin a,   u'[j + half] = u[j + half] cos a + u[j] sin a;
// the other head_dim - rotary_dims values pass through. Row r's heads start at x + r * ld, head_dim
// floats apart (GPT-NeoX: 4 of 16 dims with q, k, v of a row in one [3 * n_head * head_dim] row).
void rope_partial(float* x, size_t ld, int n_head, std::span<const RowInfo> rows, int head_dim, int rotary_dims,
                  const float* inv_freq);

// 1 + w for each weight, in float32 (Gemma's RMSNorm scales by (1 + weight)).
std::vector<float> one_plus(const float* w, size_t count);

}  // namespace nt
