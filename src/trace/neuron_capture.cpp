#include "trace/neuron_capture.h"

#include <algorithm>

namespace nt {

std::vector<std::vector<std::vector<float>>> capture_neurons(Model& model, const std::vector<std::vector<int>>& sequences,
                                                             const std::vector<CaptureNeuron>& neurons,
                                                             int max_rows_per_step) {
  const ModelConfig& c = model.config();
  std::vector<std::vector<std::vector<float>>> out(sequences.size());
  for (size_t s = 0; s < sequences.size(); ++s)
    out[s].assign(sequences[s].size(), std::vector<float>(neurons.size(), 0.0f));
  Hooks hooks(c);
  std::vector<std::pair<TraceSite, std::vector<size_t>>> sae_sites;  // each SAE site computed once per step
  for (size_t k = 0; k < neurons.size(); ++k) {
    const CaptureNeuron n = neurons[k];
    if (n.site.is_sae()) {
      auto it = std::find_if(sae_sites.begin(), sae_sites.end(), [&](const auto& e) { return e.first == n.site; });
      if (it == sae_sites.end()) it = sae_sites.insert(sae_sites.end(), {n.site, {}});
      it->second.push_back(k);
      continue;
    }
    hooks.add({n.site.hook, n.layer}, [&out, k, n](const HookContext& ctx, float* acts) {
      for (size_t r = 0; r < ctx.rows.size(); ++r)
        out[static_cast<size_t>(ctx.rows[r].seq)][static_cast<size_t>(ctx.rows[r].pos)][k] =
            acts[r * ctx.width + static_cast<size_t>(n.index)];
    });
  }
  for (const auto& entry : sae_sites)  // (no structured binding: clang 14 cannot capture one)
    hooks.add(entry.first.point(), [&out, &neurons, site = entry.first, ks = entry.second](const HookContext& ctx, float* acts) {
      constexpr size_t kChunk = 64;  // rows computed at once
      std::vector<float> units;
      for (size_t r0 = 0; r0 < ctx.rows.size(); r0 += kChunk) {
        const size_t n = std::min(kChunk, ctx.rows.size() - r0);
        const size_t width = sae_site_values(site, acts + r0 * ctx.width, static_cast<int>(n), units);
        for (size_t r = r0; r < r0 + n; ++r)
          for (size_t k : ks)
            out[static_cast<size_t>(ctx.rows[r].seq)][static_cast<size_t>(ctx.rows[r].pos)][k] =
                units[(r - r0) * width + static_cast<size_t>(neurons[k].index)];
      }
    });
  int last_layer = 0;  // blocks after the deepest captured neuron are not run
  for (const auto& n : neurons)
    last_layer = std::max(last_layer, n.site.point().layer < 0 || n.site.hook == HookSite::LnFinal ? c.n_layer - 1 : n.layer);
  size_t next = 0;
  while (next < sequences.size()) {
    KVCache cache(c);
    StepBatch batch;
    batch.last_layer = last_layer;
    while (next < sequences.size() &&
           (batch.rows.empty() || static_cast<int>(batch.rows.size() + sequences[next].size()) <= max_rows_per_step)) {
      const auto& seq = sequences[next];
      cache.open(static_cast<int>(next), static_cast<int>(seq.size()));
      for (int p = 0; p < static_cast<int>(seq.size()); ++p) {
        batch.tokens.push_back(seq[static_cast<size_t>(p)]);
        batch.rows.push_back({static_cast<int>(next), p, false, seq[static_cast<size_t>(p)]});
      }
      ++next;
    }
    model.forward(batch, cache, &hooks, nullptr);
  }
  return out;
}

}  // namespace nt
