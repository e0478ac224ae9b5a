#pragma once
// How well an SAE fits a model on given token sequences, the figures SAE users check before
// trusting its features (SAELens' evals): with x the hook's activation and x^ the reconstruction,
//   fvu      = Σ ||x − x^||² / Σ ||x − mean(x)||²  (fraction of variance unexplained)
//   mean_l0  = mean number of active latents (> 0) per token
// and, with x^ spliced in at the hook of every position (teacher-forced on the sequences),
//   kl       = mean over predicted tokens of KL(clean ‖ spliced) of the next-token distribution
//   ce_clean, ce_spliced: mean next-token cross-entropy of the sequences' own next tokens (nats).
#include <cstdint>
#include <string>
#include <vector>

#include "model/model.h"
#include "runtime/generator.h"
#include "sae/sae.h"
#include "trace/trace_site.h"

namespace nt {

struct SaeFit {
  int64_t tokens = 0;       // activations measured (every position)
  int64_t predictions = 0;  // next tokens predicted (every position but each sequence's last)
  double fvu = 0.0;
  double mean_l0 = 0.0;
  double kl = 0.0;
  double ce_clean = 0.0, ce_spliced = 0.0;
  double ce_increase() const { return ce_spliced - ce_clean; }
};

// `point`: the SAE's hook in `model` (Sae::hook_point). Sequences run in steps of at most
// max_rows_per_step rows.
SaeFit measure_sae_fit(Model& model, const Sae& sae, HookPoint point, const std::vector<std::vector<int>>& sequences,
                       int max_rows_per_step = 256);

// The fit of every SAE among `sites` (once per SAE: its latents' site) on each generation's
// tokens, prompt and continuation.
struct SiteFit {
  TraceSite site;
  SaeFit fit;
};
std::vector<SiteFit> fit_traced_saes(Model& model, const std::vector<TraceSite>& sites,
                                     const std::vector<GenerationResult>& generations);

}  // namespace nt
