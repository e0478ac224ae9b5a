#include "analysis/sae_fit.h"

#include <algorithm>
#include <cmath>

#include "steer/steering.h"

namespace nt {

namespace {

// Sums over the activations the splice hook saw.
struct SpliceSums {
  std::vector<double> sum_x;  // [d_in]
  double sum_x2 = 0.0, sum_err2 = 0.0, l0 = 0.0;
  int64_t rows = 0;
};

// Replaces each row of the hook's activation by the SAE's reconstruction, keeping the sums.
void splice(const Sae& sae, float* acts, size_t rows, SpliceSums& s) {
  const size_t d_in = static_cast<size_t>(sae.d_in()), d_sae = static_cast<size_t>(sae.d_sae());
  constexpr size_t kChunk = 64;
  SaeEncoding enc;
  std::vector<float> recons;
  for (size_t r0 = 0; r0 < rows; r0 += kChunk) {
    const size_t n = std::min(kChunk, rows - r0);
    float* x = acts + r0 * d_in;
    sae.encode(x, static_cast<int>(n), enc);
    recons.resize(n * d_in);
    sae.decode(enc.acts.data(), static_cast<int>(n), enc.norm_coeff.data(), recons.data());
    for (size_t i = 0; i < n * d_in; ++i) {
      const double v = x[i], e = v - recons[i];
      s.sum_x[i % d_in] += v;
      s.sum_x2 += v * v;
      s.sum_err2 += e * e;
    }
    for (size_t i = 0; i < n * d_sae; ++i) s.l0 += enc.acts[i] > 0.0f;
    std::copy(recons.begin(), recons.end(), x);
    s.rows += static_cast<int64_t>(n);
  }
}

// One step of whole sequences, teacher-forced: logits of every position but each sequence's last,
// and the targets (the next tokens).
StepBatch step_of(const std::vector<std::vector<int>>& sequences, size_t begin, size_t end, std::vector<int>& targets) {
  StepBatch batch;
  targets.clear();
  for (size_t s = begin; s < end; ++s) {
    const auto& seq = sequences[s];
    for (size_t p = 0; p < seq.size(); ++p) {
      batch.tokens.push_back(seq[p]);
      batch.rows.push_back({static_cast<int>(s - begin), static_cast<int>(p), false, seq[p]});
      if (p + 1 < seq.size()) {
        batch.logit_rows.push_back(static_cast<int>(batch.rows.size()) - 1);
        targets.push_back(seq[p + 1]);
      }
    }
  }
  return batch;
}

std::vector<float> run_step(Model& model, const StepBatch& batch, size_t n_seq, const Hooks* hooks) {
  KVCache cache(model.config());
  for (size_t s = 0; s < n_seq; ++s) {
    int len = 0;
    for (const RowInfo& r : batch.rows) len += r.seq == static_cast<int>(s);
    cache.open(static_cast<int>(s), len);
  }
  std::vector<float> logits(batch.logit_rows.size() * static_cast<size_t>(model.config().vocab_size));
  model.forward(batch, cache, hooks, logits.data());
  return logits;
}

}  // namespace

SaeFit measure_sae_fit(Model& model, const Sae& sae, HookPoint point, const std::vector<std::vector<int>>& sequences,
                       int max_rows_per_step) {
  const int V = model.config().vocab_size;
  SpliceSums sums;
  sums.sum_x.assign(static_cast<size_t>(sae.d_in()), 0.0);
  Hooks hooks(model.config());
  hooks.add(point, [&](const HookContext& ctx, float* acts) { splice(sae, acts, ctx.rows.size(), sums); });
  SaeFit fit;
  std::vector<int> targets;
  std::vector<double> lp_clean, lp_spliced;
  for (size_t begin = 0; begin < sequences.size();) {
    size_t end = begin, rows = 0;
    while (end < sequences.size() && (end == begin || rows + sequences[end].size() <= static_cast<size_t>(max_rows_per_step)))
      rows += sequences[end++].size();
    const StepBatch batch = step_of(sequences, begin, end, targets);
    const std::vector<float> clean = run_step(model, batch, end - begin, nullptr);
    const std::vector<float> spliced = run_step(model, batch, end - begin, &hooks);
    for (size_t i = 0; i < targets.size(); ++i) {
      log_softmax(clean.data() + i * static_cast<size_t>(V), V, lp_clean);
      log_softmax(spliced.data() + i * static_cast<size_t>(V), V, lp_spliced);
      double kl = 0.0;
      for (int v = 0; v < V; ++v) kl += std::exp(lp_clean[v]) * (lp_clean[v] - lp_spliced[v]);
      fit.kl += kl;
      fit.ce_clean -= lp_clean[static_cast<size_t>(targets[i])];
      fit.ce_spliced -= lp_spliced[static_cast<size_t>(targets[i])];
    }
    fit.predictions += static_cast<int64_t>(targets.size());
    begin = end;
  }
  fit.tokens = sums.rows;
  if (fit.predictions > 0) {
    fit.kl /= static_cast<double>(fit.predictions);
    fit.ce_clean /= static_cast<double>(fit.predictions);
    fit.ce_spliced /= static_cast<double>(fit.predictions);
  }
  if (sums.rows > 0) {
    double mean_norm2 = 0.0;
    for (double v : sums.sum_x) mean_norm2 += (v / sums.rows) * (v / sums.rows);
    const double total_var = sums.sum_x2 - static_cast<double>(sums.rows) * mean_norm2;
    fit.fvu = total_var > 0.0 ? sums.sum_err2 / total_var : 0.0;
    fit.mean_l0 = sums.l0 / static_cast<double>(sums.rows);
  }
  return fit;
}

std::vector<SiteFit> fit_traced_saes(Model& model, const std::vector<TraceSite>& sites,
                                     const std::vector<GenerationResult>& generations) {
  std::vector<std::vector<int>> sequences;
  for (const auto& g : generations) {
    sequences.push_back(g.prompt_ids);
    sequences.back().insert(sequences.back().end(), g.generated_ids.begin(), g.generated_ids.end());
  }
  std::vector<SiteFit> out;
  for (const TraceSite& s : sites)
    if (s.is_features()) out.push_back({s, measure_sae_fit(model, *s.sae, s.point(), sequences)});
  return out;
}

}  // namespace nt
