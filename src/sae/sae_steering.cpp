#include "sae/sae_steering.h"

#include <set>

#include "util/error.h"

namespace nt {

namespace {

// Which rows of a step an intervention applies to.
struct RowFilter {
  InterventionWhere where;
  std::shared_ptr<const std::set<int>> seqs;
  RowFilter(InterventionWhere w, const std::vector<int>& only)
      : where(w), seqs(std::make_shared<const std::set<int>>(only.begin(), only.end())) {}
  bool applies(const RowInfo& row) const {
    if (where == InterventionWhere::Prompt && row.generated) return false;
    if (where == InterventionWhere::Generated && !row.generated) return false;
    return seqs->empty() || seqs->count(row.seq);
  }
};

float edited_value(InterventionMode mode, float f, float value, float mean) {
  switch (mode) {
    case InterventionMode::Zero: return 0.0f;
    case InterventionMode::Mean: return mean;
    case InterventionMode::Scale: return f * value;
    case InterventionMode::Set: return value;
    case InterventionMode::Add: return f + value;
  }
  return f;
}

void add_row(float* x, const Sae& sae, int latent, float amount) {
  const float* w = sae.decoder_row(latent);
  for (int j = 0; j < sae.d_in(); ++j) x[j] += amount * w[j];
}

}  // namespace

void check_sae_latents(const Sae& sae, const std::vector<int>& latents) {
  if (latents.empty()) throw Error(sae.source() + ": no SAE latents to steer");
  std::set<int> seen;
  for (int i : latents) {
    if (i < 0 || i >= sae.d_sae())
      throw Error(sae.source() + ": latent " + std::to_string(i) + " out of range (the SAE has " +
                  std::to_string(sae.d_sae()) + " latents)");
    if (!seen.insert(i).second) throw Error(sae.source() + ": latent " + std::to_string(i) + " given twice");
  }
}

void add_sae_latent_edit(Hooks& hooks, const ModelConfig& model, std::shared_ptr<const Sae> sae,
                         const SaeLatentEdit& edit) {
  const HookPoint point = sae->hook_point(model);
  check_sae_latents(*sae, edit.latents);
  if (edit.mode == InterventionMode::Mean && edit.means.size() != edit.latents.size())
    throw Error(sae->source() + ": mode mean needs one mean per latent (" + std::to_string(edit.latents.size()) +
                " latents, " + std::to_string(edit.means.size()) + " means)");
  hooks.add(point, [sae, edit, filter = RowFilter(edit.where, edit.only_seqs)](const HookContext& ctx, float* acts) {
    const int d_in = sae->d_in(), d_sae = sae->d_sae();
    std::vector<int> rows;
    for (int r = 0; r < static_cast<int>(ctx.rows.size()); ++r)
      if (filter.applies(ctx.rows[r])) rows.push_back(r);
    if (rows.empty()) return;
    std::vector<float> x(rows.size() * static_cast<size_t>(d_in));
    for (size_t k = 0; k < rows.size(); ++k)
      std::copy_n(acts + static_cast<size_t>(rows[k]) * d_in, d_in, x.data() + k * d_in);
    SaeEncoding enc;
    sae->encode(x.data(), static_cast<int>(rows.size()), enc);
    for (size_t k = 0; k < rows.size(); ++k) {
      float* out = acts + static_cast<size_t>(rows[k]) * d_in;
      for (size_t j = 0; j < edit.latents.size(); ++j) {
        const int i = edit.latents[j];
        const float f = enc.acts[k * d_sae + i];
        const float delta = edited_value(edit.mode, f, edit.value, edit.means.empty() ? 0.0f : edit.means[j]) - f;
        if (delta != 0.0f) add_row(out, *sae, i, delta * sae->decoder_scale(i) / enc.norm_coeff[k]);
      }
    }
  });
}

void add_sae_direction_add(Hooks& hooks, const ModelConfig& model, std::shared_ptr<const Sae> sae,
                           const SaeDirectionAdd& add) {
  const HookPoint point = sae->hook_point(model);
  check_sae_latents(*sae, add.latents);
  hooks.add(point, [sae, add, filter = RowFilter(add.where, add.only_seqs)](const HookContext& ctx, float* acts) {
    for (size_t r = 0; r < ctx.rows.size(); ++r) {
      if (!filter.applies(ctx.rows[r])) continue;
      for (int i : add.latents) add_row(acts + r * sae->d_in(), *sae, i, add.strength);
    }
  });
}

}  // namespace nt
