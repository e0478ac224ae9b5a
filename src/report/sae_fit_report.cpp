#include "report/sae_fit_report.h"

#include <fmt/format.h>

namespace nt {

std::string sae_fit_text(const SiteFit& f) {
  const SaeFit& x = f.fit;
  return fmt::format("{} (SAE {}): FVU {:.3f}, mean L0 {:.1f}, KL {:.4f} nats, CE {:.3f} -> {:.3f} ({:+.3f}) nats, "
                     "{} tokens",
                     hook_name(f.site.point()), f.site.sae->source(), x.fvu, x.mean_l0, x.kl, x.ce_clean, x.ce_spliced,
                     x.ce_increase(), x.tokens);
}

nlohmann::json sae_fit_json(const std::vector<SiteFit>& fits) {
  nlohmann::json out = nlohmann::json::array();
  for (const SiteFit& f : fits)
    out.push_back({{"site", f.site.name()}, {"sae", f.site.sae->source()}, {"tokens", f.fit.tokens},
                   {"predictions", f.fit.predictions}, {"fvu", f.fit.fvu}, {"mean_l0", f.fit.mean_l0},
                   {"kl", f.fit.kl}, {"ce_clean", f.fit.ce_clean}, {"ce_spliced", f.fit.ce_spliced},
                   {"ce_increase", f.fit.ce_increase()}});
  return out;
}

}  // namespace nt
