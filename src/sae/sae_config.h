#pragma once
// What an SAE computes, read from a SAELens cfg.json (sae_weights.safetensors' companion) in either
// generation of the layout, mapped the way SAELens 6.x maps them (handle_config_defaulting,
// handle_pre_6_0_config):
//   6.x (sae_lens_version >= 6, top level or in "metadata"): "architecture" required, the hook is
//     metadata.hook_name, topk's "k" at the top level (default 100), "rescale_acts_by_decoder_norm"
//     (default false).
//   pre-6: "hook_point" -> hook_name, "hook_point_head_index" -> hook_head_index, activation from
//     "activation_fn_str" (older "activation_fn"), default "relu"; "topk" with activation_fn_kwargs.k
//     means architecture topk; architecture defaults to "standard", apply_b_dec_to_input to true;
//     boolean normalize_activations: false/null -> "none", true -> "expected_average_only_in".
// What this build cannot compute is refused by name: other architectures, normalizations other than
// none / expected_average_only_in / constant_norm_rescale / layer_norm, per-head SAEs (hook_head_index), hook_z
// reshaping, other activations, finetuning_scaling_factor.
#include <string>

namespace nt {

enum class SaeArchitecture { Standard, JumpReLU, TopK, Gated };
enum class SaeNormalization { None, ExpectedAverageOnlyIn, ConstantNormRescale, LayerNorm };

const char* sae_architecture_name(SaeArchitecture a);   // "standard", "jumprelu", "topk", "gated"
const char* sae_normalization_name(SaeNormalization n);  // SAELens' names

struct SaeConfig {
  int d_in = 0;
  int d_sae = 0;
  SaeArchitecture architecture = SaeArchitecture::Standard;
  int k = 0;                                  // topk only
  bool rescale_acts_by_decoder_norm = false;  // topk only
  bool apply_b_dec_to_input = true;
  SaeNormalization normalization = SaeNormalization::None;
  std::string hook_name;                      // TransformerLens name, e.g. "blocks.1.hook_resid_pre"
  // Trained on TransformerLens' processed model (center_writing_weights): its input is the
  // activation centred over d_in. From model_from_pretrained_kwargs.center_writing_weights (top
  // level or in metadata) when the file says it; else false.
  bool center_input = false;
  bool pre6 = false;                          // read from the pre-6.0 layout
};

// Parses cfg.json text; `file` names it in errors. Throws nt::Error (one line) for malformed JSON,
// missing or mistyped fields, and anything unsupported.
SaeConfig parse_sae_config(const std::string& text, const std::string& file);

}  // namespace nt
