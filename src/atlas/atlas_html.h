#pragma once
// The static HTML atlas (no network, no server; opens from file://):
//   index.html + index-data.js: every unit in one table, shown a page of 100 rows at a time (so a
//     50k-unit atlas stays responsive), sortable by density, max, mean, selectivity ((max - mean)
//     / std) and searchable by a word among the tokens its top contexts stand for;
//   units/<site>/L{layer}N{index}.html: a unit's figures, histogram (SVG, log counts), logit
//     effects, and its top contexts and quantile samples with every token coloured by activation.
#include <string>

#include "atlas/atlas_state.h"
#include "atlas/logit_effects.h"
#include "tokenizer/tokenizer.h"

namespace nt {

std::string atlas_unit_html(const AtlasState& state, size_t unit, const Tokenizer& tokenizer, const LogitEffect& effect);
// index-data.js: `const ATLAS = {...}` with one row per unit.
std::string atlas_index_data(const AtlasState& state, const Tokenizer& tokenizer);
std::string atlas_index_html(const AtlasState& state);

}  // namespace nt
