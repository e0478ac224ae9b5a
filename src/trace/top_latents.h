#pragma once
// generate --json --sae: each generated token's strongest SAE latents. An observer at each SAE's
// hook encodes the generated rows and keeps, per sequence and token, the K largest active latents.
#include <memory>
#include <vector>

#include "hooks/hooks.h"
#include "trace/trace_site.h"

namespace nt {

struct LatentValue {
  int latent = 0;
  float value = 0.0f;
};

struct TokenLatents {
  int pos = 0;
  int token = -1;
  std::vector<LatentValue> top;  // largest first (ties: lowest index), active latents only
};

class TopLatents {
 public:
  // One SAE site (its latents) per entry of `saes`; `k` latents kept per token.
  TopLatents(std::vector<TraceSite> saes, int k, int n_seq);
  void attach(Hooks& hooks);
  const std::vector<TraceSite>& sites() const { return sites_; }
  // [site][seq]: the generated tokens in order.
  const std::vector<std::vector<TokenLatents>>& tokens(size_t site) const { return tokens_[site]; }

 private:
  void observe(size_t site, const HookContext& ctx, const float* x);

  std::vector<TraceSite> sites_;
  int k_;
  std::vector<std::vector<std::vector<TokenLatents>>> tokens_;  // [site][seq][token]
};

}  // namespace nt
