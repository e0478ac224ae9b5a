#pragma once
// Each latent's mean activation over every token of some token sequences (the baseline prompts of
// `steer --sae --mode mean`): the sequences are run through the model once, unsteered, and the
// SAE's hook is encoded at each token.
#include <vector>

#include "model/model.h"
#include "sae/sae.h"

namespace nt {

// [d_sae] means over all tokens of `sequences`. Throws nt::Error when there is no token, or when
// the SAE does not fit the model (Sae::hook_point).
std::vector<float> sae_latent_means(Model& model, const Sae& sae, const std::vector<std::vector<int>>& sequences);

}  // namespace nt
