#pragma once
// Facts about public SAE releases that SAELens keeps in its release list (pretrained_saes.yaml)
// rather than in the files, applied when an SAE is named by its Hub id (sae/sae_open.h):
//   repository                                        release (SAELens)                    fact
//   jbloom/GPT2-Small-SAEs-Reformatted                gpt2-small-res-jb                    centred input
//   jbloom/GPT2-Small-Feature-Splitting-Experiment-Layer-8
//                                                     gpt2-small-res-jb-feature-splitting  centred input
//   tommmcgrath/gpt2-small-mlp-out-saes               gpt2-small-mlp-tm                    centred input, a norm
//                                                                                          scaling factor per layer
//   jbloom/GPT2-Small-OAI-v5-{32k,128k}-{resid-post,resid-mid,mlp-out,attn-out}-SAEs
//                                                     gpt2-small-*-v5-*                    layer_norm input (OpenAI
//                                                                                          TopK; cfg.json says it)
//   jbloom/Gemma-2b-Residual-Stream-SAEs              gemma-2b-res-jb                      layer 12's scaling factor
// "Centred input": trained on TransformerLens' processed GPT-2 (center_writing_weights), whose
// residual stream and block outputs are the Hugging Face ones minus their mean over d_model.
#include <optional>
#include <string>

namespace nt {

struct SaeReleaseFacts {
  std::string release;                        // SAELens' release name; empty: not a known release
  bool center_input = false;
  std::optional<double> norm_scaling_factor;  // for the folder asked about, when the release has one
  bool layer_norm_input = false;              // the release's cfg.json must say normalize_activations layer_norm
};

// What the table knows for `repo_id` ("ORG/NAME") and `folder` (the SAE's folder in it).
SaeReleaseFacts sae_release_facts(const std::string& repo_id, const std::string& folder);

}  // namespace nt
