#pragma once
// What identifies an SAE in outputs that must not be mixed across SAEs (an atlas's settings): where
// it was loaded from and the SHA-256 of its files' content (cfg.json, weights, params.npz), so
// parts scanned with another SAE are recognised even when the path is the same.
#include <nlohmann/json.hpp>

#include "sae/sae.h"

namespace nt {

// {"source": path, "hook", "d_in", "d_sae", "sha256": hex of the files under source() in name order}.
// Throws nt::Error naming a file that cannot be read.
nlohmann::json sae_identity(const Sae& sae);

}  // namespace nt
