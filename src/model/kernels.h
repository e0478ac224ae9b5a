#pragma once
// The numerical building blocks of the forward pass. All activations are row-major [rows, width].
#include <span>

#include "hooks/hooks.h"
#include "model/kv_cache.h"
#include "model/weight_matrix.h"

namespace nt {

// y[n, out] = x[n, in] @ W (+ bias), for a Matrix (x: [n, w.in()], y: [n, w.out()], bias:
// [w.out()] or null). The weights are read panel by panel (weight_matrix.h), each thread of
// thread_pool() taking one contiguous range of panels; for each panel, tiles of up to 6 rows of x
// keep 6 x 64 float32 sums in registers, and every stored weight (float32, or widened in registers
// from bf16 / int8) meets each row of the tile with one FMA. So a decode step reads every weight
// from memory once for all its rows (memory-bound at batch 1), and large steps run near the CPU's
// FMA rate (rows are taken 192 at a time, inputs 768 at a time, so tiles work from L1/L2; from 24
// rows on, the next block of weights is prefetched while the current one is computed).
//
// Each output is summed in input order by one thread, so results do not depend on the thread
// count or on which other rows share the step (a sequence's tokens do not change with the batch).
//
// Why not OpenBLAS: measured with nt_bench on the 2-vCPU Zen 5 (GPT-2-small shapes, float32),
// OpenBLAS sgemv/sgemm decoded at 55.8 tokens/s at batch 1 (this: ~110, the read-bandwidth
// bound) and repacked the weights on every call at small row counts; Debian's OpenBLAS 0.3.21
// runs its AVX2 "Haswell" SGEMM here, at ~90 GFLOP/s per core.
void linear(const float* x, int n, const Matrix& w, const float* bias, float* y);

// y[i] = x[rows[i]] @ W for some rows of x ([*, w.in()]): the rows are gathered into `scratch`
// first, so the product reads the weights once (the LM head over the rows that need logits).
void linear_gathered(const float* x, std::span<const int> rows, const Matrix& w, std::vector<float>& scratch,
                     float* y);

// LayerNorm over each row: (x - mean) / sqrt(var + eps) * w + b, biased variance.
void layer_norm(const float* x, int n, int width, const float* w, const float* b, float eps, float* y);
// RMSNorm over each row: w * x / sqrt(mean(x^2) + eps).
void rms_norm(const float* x, int n, int width, const float* w, float eps, float* y);

// gelu_new(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), in place.
void gelu_tanh(float* x, size_t count);

// y += x
void add_inplace(float* y, const float* x, size_t count);

// Variants of attention's scores (Gemma-2): defaults give plain softmax(q.k / sqrt(head_dim)).
struct AttentionOptions {
  float scale = 0.0f;    // scores = q.k * scale; 0: 1 / sqrt(head_dim)
  float softcap = 0.0f;  // > 0: scores = softcap * tanh(scores / softcap), before the causal mask
  int window = 0;        // > 0: a row at position p attends to positions p - window + 1 .. p only
};

// Writes each row's key and value into the KV cache at its position, then computes causal
// attention for each row over positions 0..pos of its own sequence (see AttentionOptions).
//   q:    [rows, n_head * head_dim], rows ldq floats apart (0: packed)
//   k, v: [rows, n_kv_head * head_dim], rows ldkv floats apart (0: packed)
//   out:  [rows, n_head * head_dim]
// Query head h uses KV head h / (n_head / n_kv_head). A row at a position past its sequence's
// cache capacity is an nt::Error.
void attention(const float* q, size_t ldq, const float* k, const float* v, size_t ldkv,
               std::span<const RowInfo> rows, KVCache& cache, int layer, int n_head, int n_kv_head, int head_dim,
               float* out, const AttentionOptions& options = {});

}  // namespace nt

// ---- Llama family: RoPE and SwiGLU ------------------------------------------------------------
// (Kept together at the end of the file; added with the Llama architecture.)
#include <vector>

#include "io/model_config.h"

namespace nt {

// RoPE inverse frequencies inv_freq[j], j = 0 .. head_dim/2 - 1, computed in float32 as
// transformers does: 1 / theta^(2j / head_dim), then `scaling` applied (linear: / factor;
// llama3: Llama-3.1's wavelength-dependent interpolation).
std::vector<float> rope_inv_freq(int head_dim, float theta, const RopeScaling& scaling);

// Rotates q [rows, n_q_head * head_dim] and k [rows, n_k_head * head_dim] in place by each row's
// position, in Hugging Face's rotate_half layout: with a = pos * inv_freq[j] and half = head_dim/2,
//   u'[j] = u[j] cos a - u[j + half] sin a,   u'[j + half] = u[j + half] cos a + u[j] sin a.
void rope(float* q, int n_q_head, float* k, int n_k_head, std::span<const RowInfo> rows, int head_dim,
          const float* inv_freq);

// silu(x) = x / (1 + exp(-x)), in place.
void silu(float* x, size_t count);
// gate = silu(gate) * up (the SwiGLU MLP hidden), in place.
void silu_mul(float* gate, const float* up, size_t count);

}  // namespace nt
