#pragma once
// Logit effects of units, read from the weights (no corpus): the direction a unit writes into the
// residual stream, through the final norm's gain and the unembedding, as TransformerLens computes
// them after fold_ln (the gain folded into W_U; the norm's centring and scaling, which depend on
// the whole residual, left out):
//   mlp.hook_post neuron n of layer l:   (W_out[l][n] ⊙ g) · W_U
//   a residual-width site's dimension d: g_d · W_U[d]   (the unembedding row)
//   an SAE latent f at a residual-width hook: (s_f W_dec[f] ⊙ g) · W_U, s_f the SAE's decoder
//     scale (1, or 1 / ||W_dec[f]|| for a TopK SAE rescaling by decoder norm): one unit of the latent
//     as it enters the residual stream
// W_out: GPT-2 mlp.c_proj, Llama/Qwen/Mistral mlp.down_proj, GPT-NeoX mlp.dense_4h_to_h; g: ln_f /
// model.norm / final_layer_norm weight; W_U: the LM head (the embedding when tied). Gemma-2 (an
// extra norm after the MLP), SAEs at other hooks (mlp.hook_post, attention) and other sites get none.
#include <string>
#include <vector>

#include "trace/neuron_layout.h"

namespace nt {

struct LogitEffect {
  std::vector<int> top_ids, bottom_ids;   // the `count` tokens pushed up most / down most
  std::vector<float> top_values, bottom_values;
};

// One entry per unit of `layout` (empty for a unit without logit effects). Throws nt::Error
// naming a missing tensor.
std::vector<LogitEffect> logit_effects(const std::string& model_dir, const ModelConfig& config,
                                       const NeuronLayout& layout, int count = 10);

}  // namespace nt
