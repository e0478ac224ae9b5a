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
  for (size_t k = 0; k < neurons.size(); ++k) {
    const CaptureNeuron n = neurons[k];
    hooks.add({n.site, n.layer}, [&out, k, n](const HookContext& ctx, float* acts) {
      for (size_t r = 0; r < ctx.rows.size(); ++r)
        out[static_cast<size_t>(ctx.rows[r].seq)][static_cast<size_t>(ctx.rows[r].pos)][k] =
            acts[r * ctx.width + static_cast<size_t>(n.index)];
    });
  }
  int last_layer = 0;  // blocks after the deepest captured neuron are not run
  for (const auto& n : neurons) last_layer = std::max(last_layer, n.site == HookSite::LnFinal ? c.n_layer - 1 : n.layer);
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
