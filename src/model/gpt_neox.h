#pragma once
// GPT-NeoX (Pythia) as Hugging Face's modeling_gpt_neox.py computes it: LayerNorm pre-norm blocks,
// a fused query_key_value projection laid out per head ([n_head][q | k | v]), rotate_half RoPE on
// the first rotary_dims of each head, exact-erf GELU MLP, parallel residual
// (x + attn(ln1 x) + mlp(ln2 x)) or sequential, untied embed_out LM head. The causal-mask and
// inv_freq buffers older checkpoints store (attention.bias, attention.masked_bias,
// attention.rotary_emb.inv_freq) are not parameters and are ignored.
#include <memory>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "io/model_weights.h"
#include "model/model.h"
#include "model/weight_matrix.h"

namespace nt {

// The hook sites GPT-NeoX fires, in forward order (TransformerLens's names; no hook_pos_embed, and
// no hook_resid_mid with the parallel residual, where no such stream exists).
std::vector<HookSite> gpt_neox_hook_sites(const ModelConfig& config);

std::unique_ptr<Model> load_gpt_neox(const ModelConfig& config,
                                     std::unique_ptr<ModelWeights> weights,
                                     WeightFormat format = WeightFormat::F32);

}  // namespace nt
