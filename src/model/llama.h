#pragma once
// Llama as Hugging Face's modeling_llama.py computes it: RMSNorm pre-norm blocks, RoPE
// (rotate_half layout) on q and k, grouped-query attention, SwiGLU MLP, nn.Linear weights stored
// [out, in], untied LM head unless tie_word_embeddings. The same code runs model_type "mistral"
// (identical tensors; sliding window handled by capping the context) and "qwen2" (q/k/v biases).
#include <memory>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "io/model_weights.h"
#include "model/model.h"
#include "model/weight_matrix.h"

namespace nt {

// The hook sites the Llama family's forward pass fires, in forward order (no hook_pos_embed;
// mlp.hook_pre_linear is the up projection).
std::vector<HookSite> llama_hook_sites(const ModelConfig& config);

std::unique_ptr<Model> load_llama(const ModelConfig& config,
                                  std::unique_ptr<ModelWeights> weights,
                                  WeightFormat format = WeightFormat::F32);

}  // namespace nt
