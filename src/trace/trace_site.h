#pragma once
// What a trace records: a per-layer hook site at every layer (hook_resid_post, mlp.hook_post, ...),
// or one output of a sparse autoencoder (SAE) at its hook point, named as SAELens'
// HookedSAETransformer names them:
//   <hook>.hook_sae_acts_post  the SAE's latents (d_sae units, "features", labelled F1234)
//   <hook>.hook_sae_recons     its reconstruction of the hook's activation (d_in units)
//   <hook>.hook_sae_error      the activation minus the reconstruction (d_in units)
#include <memory>
#include <string>
#include <vector>

#include "hooks/hook_point.h"
#include "io/model_config.h"

namespace nt {

class Sae;

enum class SaeOutput { Latents, Recons, Error };

struct TraceSite {
  HookSite hook = HookSite::ResidPost;  // the per-layer site, or the SAE's hook site
  std::shared_ptr<const Sae> sae;       // null: `hook` at every layer
  int layer = -1;                       // the SAE's hook layer (-1 for a global hook)
  SaeOutput output = SaeOutput::Latents;

  TraceSite() = default;
  TraceSite(HookSite site) : hook(site) {}  // NOLINT(google-explicit-constructor): a hook site is a trace site
  TraceSite(std::shared_ptr<const Sae> s, HookPoint point, SaeOutput out)
      : hook(point.site), sae(std::move(s)), layer(point.layer), output(out) {}

  bool is_sae() const { return sae != nullptr; }
  bool is_features() const { return sae && output == SaeOutput::Latents; }
  HookPoint point() const { return {hook, layer}; }
  // "mlp.hook_post" for a hook site, "blocks.2.hook_resid_post.hook_sae_acts_post" for an SAE's.
  std::string name() const;
  // "neuron" or "feature": what one unit is called in table titles.
  const char* unit_noun() const { return is_features() ? "feature" : "neuron"; }
  bool operator==(const TraceSite& o) const {
    return hook == o.hook && sae == o.sae && layer == o.layer && (!sae || output == o.output);
  }
};

// "L11N447" for a neuron (layer, index), "F1234" for a feature.
std::string unit_label(const TraceSite& site, int layer, int index);

// The sites named by `names` (flags or a study's trace.sites) followed by the latents of every SAE
// not already named: a per-layer hook site ("hook_resid_post", "blocks.*.mlp.hook_post"), or
// "<hook of a loaded SAE>.hook_sae_acts_post|.hook_sae_recons|.hook_sae_error". Every SAE is
// checked against the model (its hook and d_in; one line naming both). Throws nt::Error.
std::vector<TraceSite> resolve_trace_sites(const std::vector<std::string>& names,
                                           const std::vector<std::shared_ptr<const Sae>>& saes,
                                           const ModelConfig& config);

// The units of an SAE site for `rows` rows x ([rows, d_in]) of its hook, into out [rows, width];
// returns the width (d_sae for the latents, d_in for the reconstruction and the error).
size_t sae_site_values(const TraceSite& site, const float* x, int rows, std::vector<float>& out);

// The SAEs given by --sae or a study's "saes", opened by open_sae (sae/sae_open.h: paths or Hub
// ids; the release table's settings; checked against `model`).
std::vector<std::shared_ptr<const Sae>> load_saes(const std::vector<std::string>& specs, const ModelConfig& model);

}  // namespace nt
