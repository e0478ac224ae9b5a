#pragma once
// The SAE fit (analysis/sae_fit.h) as one line of text (stderr, the study report) and as JSON
// (trace.json and study.json "sae_fit").
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "analysis/sae_fit.h"

namespace nt {

// "blocks.2.hook_resid_post (SAE DIR): FVU 0.187, mean L0 35.2, KL 0.112 nats, CE 4.72 -> 4.97 (+0.246) nats, 1234 tokens"
std::string sae_fit_text(const SiteFit& f);
nlohmann::json sae_fit_json(const std::vector<SiteFit>& fits);

}  // namespace nt
