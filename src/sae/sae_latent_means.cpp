#include "sae/sae_latent_means.h"

#include "model/kv_cache.h"
#include "util/error.h"

namespace nt {

std::vector<float> sae_latent_means(Model& model, const Sae& sae, const std::vector<std::vector<int>>& sequences) {
  const ModelConfig& c = model.config();
  const HookPoint point = sae.hook_point(c);
  const int d_sae = sae.d_sae();
  std::vector<double> sums(static_cast<size_t>(d_sae), 0.0);
  long tokens = 0;
  Hooks hooks(c);
  hooks.add(point, [&](const HookContext& ctx, float* acts) {
    SaeEncoding enc;
    sae.encode(acts, static_cast<int>(ctx.rows.size()), enc);
    for (size_t r = 0; r < ctx.rows.size(); ++r)
      for (int i = 0; i < d_sae; ++i) sums[static_cast<size_t>(i)] += enc.acts[r * d_sae + i];
    tokens += static_cast<long>(ctx.rows.size());
  });
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  for (const auto& seq : sequences) {  // one sequence per step: memory bounded by the longest
    if (seq.empty()) continue;
    KVCache cache(c);
    cache.open(0, static_cast<int>(seq.size()));
    StepBatch batch;
    for (size_t p = 0; p < seq.size(); ++p) {
      batch.tokens.push_back(seq[p]);
      batch.rows.push_back({0, static_cast<int>(p), false, seq[p]});
    }
    batch.logit_rows.push_back(static_cast<int>(seq.size()) - 1);
    model.forward(batch, cache, &hooks, logits.data());
  }
  if (tokens == 0) throw Error("no baseline token to take the SAE latents' means from");
  std::vector<float> means(static_cast<size_t>(d_sae));
  for (int i = 0; i < d_sae; ++i) means[static_cast<size_t>(i)] = static_cast<float>(sums[static_cast<size_t>(i)] / tokens);
  return means;
}

}  // namespace nt
