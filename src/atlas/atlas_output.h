#pragma once
// An atlas folder: atlas.safetensors (the whole state), units/<site>/L{layer}N{index}.json (one
// NeuronRecord per unit, unit_record.h) and .html (its page), index.html + index-data.js
// (atlas_html.h), summary.csv (one line per unit: site, layer, index, mean, std, min, max,
// density, top token). Files are written atomically; units/ as a whole (staged, then renamed).
#include <string>

#include "atlas/atlas_state.h"
#include "atlas/logit_effects.h"
#include "tokenizer/tokenizer.h"

namespace nt {

// `effects`: one per unit (logit_effects.h), or empty for none.
void write_atlas(const std::string& dir, const AtlasState& state, const Tokenizer& tokenizer,
                 const std::vector<LogitEffect>& effects);

}  // namespace nt
