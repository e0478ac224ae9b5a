#pragma once
// --dump-activations: the raw per-token activations a trace recorded, as safetensors that numpy,
// torch and safetensors' own loaders read:
//   "<site>" F32 [tokens, n_layer, width] for each traced hook site (e.g. "hook_resid_post", "mlp.hook_post")
//   "<hook>.hook_sae_acts_post" F32 [tokens, d_sae] for an SAE's latents (recons, error: [tokens, d_in])
//   "token_ids" I64 [tokens], "positions" I64 [tokens], "prompt_index" I64 [tokens]
#include <string>

#include "trace/recorder.h"

namespace nt {

// Creates the folder of `path` when missing; written atomically (util/atomic_file.h).
void write_activation_dump(const std::string& path, const Recorder& recorder);

}  // namespace nt
