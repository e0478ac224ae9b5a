#pragma once
// Gemma-2 as Hugging Face's modeling_gemma2.py computes it: embeddings times sqrt(hidden_size);
// RMSNorm scaling by (1 + weight) before and after both attention and the MLP (the post-norms on a
// sub-layer's output, before the residual add); RoPE (rotate_half) on q and k; grouped-query
// attention with an explicit head_dim, scores scaled by query_pre_attn_scalar^-0.5 and soft-capped
// before the mask; sliding-window attention on the layers with an even index; GeGLU MLP with tanh
// GELU; LM head tied to the embedding; final logits soft-capped.
#include <memory>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "io/model_weights.h"
#include "model/model.h"
#include "model/weight_matrix.h"

namespace nt {

// The hook sites Gemma-2 fires, in forward order (TransformerLens's names): hook_attn_out and
// hook_mlp_out are after the post-norms, where Gemma Scope's attention- and MLP-output SAEs read;
// hook_embed is already scaled by sqrt(hidden_size); mlp.hook_pre is the gate, mlp.hook_pre_linear
// the up projection, mlp.hook_post their GeGLU product.
std::vector<HookSite> gemma2_hook_sites(const ModelConfig& config);

std::unique_ptr<Model> load_gemma2(const ModelConfig& config,
                                   std::unique_ptr<ModelWeights> weights,
                                   WeightFormat format = WeightFormat::F32);

}  // namespace nt
