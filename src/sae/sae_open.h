#pragma once
// Opening the SAE a command names (--sae), the one place the CLI commands go through:
//   a local SAELens folder, its cfg.json, a params.npz or a folder holding it (sae/sae.h); or
//   a Hugging Face id ORG/REPO[/FOLDER] (SAELens release folders such as
//     jbloom/GPT2-Small-SAEs-Reformatted/blocks.8.hook_resid_pre, Gemma Scope's
//     google/gemma-scope-2b-pt-res/layer_12/width_16k/average_l0_82), found in the Hugging Face cache
//     (io/model_resolver.h) or, unless offline, downloaded through io/hub_download.h: only FOLDER's
//     cfg.json, sae_weights.safetensors, sparsity.safetensors (when there) or params.npz.
// Settings the files do not carry come from, in order: the options (--sae-center, --sae-scale), the
// cfg.json (model_from_pretrained_kwargs.center_writing_weights), and, for an SAE named by Hub id,
// the table of known releases (sae/sae_releases.h). A setting that is needed but known from none
// of them is refused by name (expected_average_only_in without a scaling factor).
// The SAE must fit the model: its hook fires in the model and d_in is the hook's width.
#include <memory>
#include <optional>
#include <string>

#include "io/model_config.h"
#include "sae/sae.h"

namespace nt {

struct SaeOpenOptions {
  bool center_input = false;                  // centre the input over d_model whatever the files say
  std::optional<double> norm_scaling_factor;  // for normalize_activations expected_average_only_in
  WeightFormat encoder_format = WeightFormat::F32;
};

// Throws nt::Error (one line) for a spec that is neither a path nor a Hub id, an SAE not in the
// cache while offline, a repository without that SAE, anything Sae::load refuses, an SAE that does
// not fit `model` (naming the SAE's hook and d_in and the model's), and centring asked for a hook
// that is not d_model wide. A missing scaling factor is an nt::OptionError "sae.norm_scaling_factor".
std::shared_ptr<const Sae> open_sae(const std::string& spec, const SaeOpenOptions& options, const ModelConfig& model);

}  // namespace nt
