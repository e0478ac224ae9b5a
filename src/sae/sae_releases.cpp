#include "sae/sae_releases.h"

#include <utility>
#include <vector>

namespace nt {

namespace {

struct Release {
  const char* repo_id;
  const char* release;
  bool center_input;
  bool layer_norm_input;
  std::vector<std::pair<const char*, double>> scaling;  // folder, norm_scaling_factor
};

// From SAELens' pretrained_saes.yaml (repo_id, path, norm_scaling_factor) and the releases' training
// setups (model_from_pretrained_kwargs center_writing_weights; OpenAI's layer_norm).
const std::vector<Release>& releases() {
  static const std::vector<Release> table = {
      {"jbloom/GPT2-Small-SAEs-Reformatted", "gpt2-small-res-jb", true, false, {}},
      {"jbloom/GPT2-Small-Feature-Splitting-Experiment-Layer-8", "gpt2-small-res-jb-feature-splitting", true, false, {}},
      {"tommmcgrath/gpt2-small-mlp-out-saes",
       "gpt2-small-mlp-tm",
       true,
       false,
       {{"sae_group_gpt2_blocks.0.hook_mlp_out_24576:v1", 1.049317316132615},
        {"sae_group_gpt2_blocks.1.hook_mlp_out_24576:v0", 2.3693984005104283},
        {"sae_group_gpt2_blocks.2.hook_mlp_out_24576:v0", 1.6411934982190302},
        {"sae_group_gpt2_blocks.3.hook_mlp_out_24576:v0", 1.8958522157897557},
        {"sae_group_gpt2_blocks.4.hook_mlp_out_24576:v0", 1.81673478700627},
        {"sae_group_gpt2_blocks.5.hook_mlp_out_24576:v0", 1.550234472245924},
        {"sae_group_gpt2_blocks.6.hook_mlp_out_24576:v0", 1.3237742807210804},
        {"sae_group_gpt2_blocks.7.hook_mlp_out_24576:v0", 1.1042905114723296},
        {"sae_group_gpt2_blocks.8.hook_mlp_out_24576:v1", 0.9123762783479742},
        {"sae_group_gpt2_blocks.9.hook_mlp_out_24576:v0", 0.6955335635232373},
        {"sae_group_gpt2_blocks.10.hook_mlp_out_24576:v0", 0.3619728926727644},
        {"sae_group_gpt2_blocks.11.hook_mlp_out_24576:v2", 0.2851548652550073}}},
      {"jbloom/GPT2-Small-OAI-v5-32k-resid-post-SAEs", "gpt2-small-resid-post-v5-32k", false, true, {}},
      {"jbloom/GPT2-Small-OAI-v5-128k-resid-post-SAEs", "gpt2-small-resid-post-v5-128k", false, true, {}},
      {"jbloom/GPT2-Small-OAI-v5-32k-resid-mid-SAEs", "gpt2-small-resid-mid-v5-32k", false, true, {}},
      {"jbloom/GPT2-Small-OAI-v5-128k-resid-mid-SAEs", "gpt2-small-resid-mid-v5-128k", false, true, {}},
      {"jbloom/GPT2-Small-OAI-v5-32k-mlp-out-SAEs", "gpt2-small-mlp-out-v5-32k", false, true, {}},
      {"jbloom/GPT2-Small-OAI-v5-128k-mlp-out-SAEs", "gpt2-small-mlp-out-v5-128k", false, true, {}},
      {"jbloom/GPT2-Small-OAI-v5-32k-attn-out-SAEs", "gpt2-small-attn-out-v5-32k", false, true, {}},
      {"jbloom/GPT2-Small-OAI-v5-128k-attn-out-SAEs", "gpt2-small-attn-out-v5-128k", false, true, {}},
      {"jbloom/Gemma-2b-Residual-Stream-SAEs",
       "gemma-2b-res-jb",
       false,
       false,
       {{"gemma_2b_blocks.12.hook_resid_post_16384", 0.21381938399317255}}},
  };
  return table;
}

}  // namespace

SaeReleaseFacts sae_release_facts(const std::string& repo_id, const std::string& folder) {
  SaeReleaseFacts facts;
  for (const auto& r : releases()) {
    if (repo_id != r.repo_id) continue;
    facts.release = r.release;
    facts.center_input = r.center_input;
    facts.layer_norm_input = r.layer_norm_input;
    for (const auto& [f, s] : r.scaling)
      if (folder == f) facts.norm_scaling_factor = s;
  }
  return facts;
}

}  // namespace nt
