#pragma once
// trace/study --atlas DIR: each reported neuron's atlas concept share (the share of its atlas top
// contexts with a concept word near the max token, atlas/concept_query.h, the code `atlas query`
// ranks by) and the concept's base rate over random corpus tokens, beside the trace's figures.
#include <string>
#include <vector>

#include "analysis/consistency.h"
#include "atlas/model_atlas.h"

namespace nt {

struct AtlasShares {
  double base_rate = 0;
  std::vector<double> share;  // per unit of the traced layout
};

// Throws nt::OptionError("atlas.words") for no words or an empty one.
AtlasShares atlas_shares(const ModelAtlas& atlas, const std::vector<std::string>& words, const Tokenizer& tokenizer);

// Sets the rows' atlas_share and the analysis's atlas_base_rate.
void add_atlas_shares(ConceptAnalysis& analysis, const AtlasShares& shares, const NeuronLayout& layout);

}  // namespace nt
