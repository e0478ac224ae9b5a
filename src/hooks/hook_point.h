#pragma once
// Hook points, named as TransformerLens names them:
//   hook_embed, hook_pos_embed, blocks.{l}.hook_resid_pre, blocks.{l}.hook_attn_out,
//   blocks.{l}.hook_resid_mid, blocks.{l}.mlp.hook_pre, blocks.{l}.mlp.hook_pre_linear (Llama, Gemma-2),
//   blocks.{l}.mlp.hook_post, blocks.{l}.hook_mlp_out, blocks.{l}.hook_resid_post,
//   ln_final.hook_normalized
#include <string>
#include <vector>

#include "io/model_config.h"

namespace nt {

enum class HookSite {
  Embed,         // hook_embed                 [rows, d_model]
  PosEmbed,      // hook_pos_embed             [rows, d_model] (GPT-2 only)
  ResidPre,      // blocks.l.hook_resid_pre    [rows, d_model]
  AttnOut,       // blocks.l.hook_attn_out     [rows, d_model]
  ResidMid,      // blocks.l.hook_resid_mid    [rows, d_model]
  MlpPre,        // blocks.l.mlp.hook_pre      [rows, d_mlp]
  MlpPreLinear,  // blocks.l.mlp.hook_pre_linear [rows, d_mlp] (Llama, Gemma-2 up projection)
  MlpPost,       // blocks.l.mlp.hook_post     [rows, d_mlp]
  MlpOut,        // blocks.l.hook_mlp_out      [rows, d_model]
  ResidPost,     // blocks.l.hook_resid_post   [rows, d_model]
  LnFinal,       // ln_final.hook_normalized   [rows, d_model]
};
inline constexpr int kHookSiteCount = 11;

struct HookPoint {
  HookSite site;
  int layer = -1;  // -1 for hook_embed, hook_pos_embed, ln_final.hook_normalized
  bool operator==(const HookPoint&) const = default;
};

bool site_is_per_layer(HookSite site);
// The name part after "blocks.{l}." ("hook_resid_post", "mlp.hook_post"), or the full global name.
std::string site_name(HookSite site);
std::string hook_name(HookPoint point);
// Width of the activation vector at a site for this model.
int site_width(HookSite site, const ModelConfig& config);

// The hook sites this model's forward pass fires, in forward order (TransformerLens's hook_dict for
// the architecture). Each architecture declares its own (model/gpt2.h, model/llama.h, ...); this
// dispatch is defined beside the loader's in model/load_model.cpp.
std::vector<HookSite> model_hook_sites(const ModelConfig& config);
bool model_fires(const ModelConfig& config, HookSite site);
// Throws nt::Error unless this model's forward pass fires `site`; the message names the model
// type and lists its points.
void check_site(const ModelConfig& config, HookSite site);
// Throws nt::Error when this model has no such point: a site its architecture does not fire
// (check_site), a layer out of range, or a layer given to a global site / missing for a per-layer one.
void check_hook_point(const ModelConfig& config, HookPoint point);

// The one parser of hook names given by users (flags, study configs). Accepted:
//   "blocks.*.X" or "X" for a per-layer site X ("hook_resid_post", "resid_post", "mlp.hook_post",
//   "mlp_post", ...): every layer; "blocks.3.X": layer 3 only; a global name ("hook_embed",
//   "ln_final.hook_normalized"): that point. Throws nt::Error listing the valid names when unknown.
struct HookName {
  HookSite site;
  int layer = -1;  // -1: every layer (per-layer sites) or none (global sites)
};
HookName parse_hook_name(const std::string& name);
// A per-layer site covering every layer ("blocks.*.X" or "X"), as trace sites and steering sites
// are (a steered neuron names its own layer). Refuses one layer ("blocks.3.X") and global points,
// explaining why; `what` names the option in the message ("trace site", "steer site").
HookSite parse_layer_site(const std::string& name, const std::string& what);

}  // namespace nt
