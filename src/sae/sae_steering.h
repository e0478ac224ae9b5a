#pragma once
// Steering with an SAE's latents, at the SAE's hook point, as interventions on nt::Hooks.
//
// Latent edits keep the SAE's reconstruction error, so whatever the SAE does not explain is left
// alone and a latent left unchanged leaves the activation exactly as it was (SAELens: forward with
// use_error_term=True and a hook on hook_sae_acts_post):
//   x' = x + norm_out( sum_i (f'_i - f_i) * decoder_scale(i) * W_dec[i] )
// with f = encode(x) and f'_i from the mode: zero (0), mean (the latent's given mean), scale:F
// (F * f_i), set:V (V), add:V (f_i + V). Only the rows the edit applies to are encoded.
//
// Direction steering adds decoder rows without encoding (Neuronpedia's steering, the row as stored,
// not unit-normalized): x' = x + S * W_dec[i] for each chosen latent i.
#include <memory>
#include <vector>

#include "hooks/hooks.h"
#include "io/model_config.h"
#include "sae/sae.h"
#include "steer/intervention.h"

namespace nt {

struct SaeLatentEdit {
  std::vector<int> latents;
  InterventionMode mode = InterventionMode::Zero;  // parse with steer/intervention.h parse_mode()
  float value = 0.0f;                              // scale factor, set value or added value
  std::vector<float> means;                        // mode mean: one value per latent
  InterventionWhere where = InterventionWhere::All;
  std::vector<int> only_seqs;                      // empty: every sequence
};

struct SaeDirectionAdd {
  std::vector<int> latents;
  float strength = 0.0f;
  InterventionWhere where = InterventionWhere::All;
  std::vector<int> only_seqs;
};

// Throws nt::Error naming the SAE when `latents` is empty, has one out of range or one twice.
void check_sae_latents(const Sae& sae, const std::vector<int>& latents);

// Register the intervention at the SAE's hook point in `model` (Sae::hook_point: throws nt::Error
// when the SAE does not fit the model). Throws nt::Error naming the SAE for a latent out of range,
// no latents, or mode mean without one mean per latent.
void add_sae_latent_edit(Hooks& hooks, const ModelConfig& model, std::shared_ptr<const Sae> sae,
                         const SaeLatentEdit& edit);
void add_sae_direction_add(Hooks& hooks, const ModelConfig& model, std::shared_ptr<const Sae> sae,
                           const SaeDirectionAdd& add);

}  // namespace nt
