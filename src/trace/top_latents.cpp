#include "trace/top_latents.h"

#include <algorithm>

#include "sae/sae.h"
#include "util/error.h"

namespace nt {

TopLatents::TopLatents(std::vector<TraceSite> saes, int k, int n_seq) : sites_(std::move(saes)), k_(k) {
  if (k_ <= 0) throw Error("the number of top latents per token must be positive (got " + std::to_string(k_) + ")");
  tokens_.assign(sites_.size(), std::vector<std::vector<TokenLatents>>(static_cast<size_t>(n_seq)));
}

void TopLatents::attach(Hooks& hooks) {
  for (size_t s = 0; s < sites_.size(); ++s)
    hooks.add(sites_[s].point(), [this, s](const HookContext& ctx, float* acts) { observe(s, ctx, acts); });
}

void TopLatents::observe(size_t site, const HookContext& ctx, const float* x) {
  std::vector<size_t> rows;
  for (size_t r = 0; r < ctx.rows.size(); ++r)
    if (ctx.rows[r].generated) rows.push_back(r);
  if (rows.empty()) return;
  const size_t d_in = static_cast<size_t>(ctx.width);
  std::vector<float> in(rows.size() * d_in), latents;
  for (size_t k = 0; k < rows.size(); ++k) std::copy_n(x + rows[k] * d_in, d_in, in.data() + k * d_in);
  const size_t width = sae_site_values(sites_[site], in.data(), static_cast<int>(rows.size()), latents);
  for (size_t k = 0; k < rows.size(); ++k) {
    const RowInfo& row = ctx.rows[rows[k]];
    const float* f = latents.data() + k * width;
    TokenLatents t{row.pos, row.token, {}};
    for (size_t i = 0; i < width; ++i)
      if (f[i] > 0.0f) t.top.push_back({static_cast<int>(i), f[i]});
    const size_t keep = std::min(t.top.size(), static_cast<size_t>(k_));
    std::partial_sort(t.top.begin(), t.top.begin() + static_cast<long>(keep), t.top.end(),
                      [](const LatentValue& a, const LatentValue& b) {
                        return a.value != b.value ? a.value > b.value : a.latent < b.latent;
                      });
    t.top.resize(keep);
    tokens_[site][static_cast<size_t>(row.seq)].push_back(std::move(t));
  }
}

}  // namespace nt
