#pragma once
// An atlas folder: atlas.safetensors (the whole state), units/<site>/L{layer}N{index}.json (one
// NeuronRecord per unit, unit_record.h) and summary.csv (one line per unit: site, layer, index,
// mean, std, max, density, top token). Every file is written atomically.
#include <string>

#include "atlas/atlas_state.h"
#include "atlas/logit_effects.h"
#include "tokenizer/tokenizer.h"

namespace nt {

// `effects`: one per unit (logit_effects.h), or empty for none.
void write_atlas(const std::string& dir, const AtlasState& state, const Tokenizer& tokenizer,
                 const std::vector<LogitEffect>& effects);

}  // namespace nt
