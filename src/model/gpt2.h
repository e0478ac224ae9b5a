#pragma once
// GPT-2 as Hugging Face's modeling_gpt2.py computes it: learned positions, pre-LayerNorm blocks,
// tanh-GELU MLP, Conv1D weights stored [in, out], LM head tied to the token embedding.
#include <memory>
#include <string>
#include <vector>

#include "io/model_config.h"
#include "io/model_weights.h"
#include "model/model.h"
#include "model/weight_matrix.h"

namespace nt {

// The hook sites GPT-2's forward pass fires, in forward order (TransformerLens's hook_dict).
std::vector<HookSite> gpt2_hook_sites(const ModelConfig& config);

std::unique_ptr<Model> load_gpt2(const ModelConfig& config,
                                 std::unique_ptr<ModelWeights> weights,
                                 WeightFormat format = WeightFormat::F32);

}  // namespace nt
