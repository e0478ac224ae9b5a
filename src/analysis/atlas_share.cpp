#include "analysis/atlas_share.h"

#include "atlas/concept_query.h"

namespace nt {

AtlasShares atlas_shares(const ModelAtlas& atlas, const std::vector<std::string>& words, const Tokenizer& tokenizer) {
  const ConceptQuery q = concept_shares(atlas.state, tokenizer, words, kConceptWindow);
  AtlasShares out{q.base_rate, std::vector<double>(atlas.units.size(), 0.0)};
  for (size_t u = 0; u < atlas.units.size(); ++u) out.share[u] = q.units[atlas.units[u]].share;
  return out;
}

void add_atlas_shares(ConceptAnalysis& analysis, const AtlasShares& shares, const NeuronLayout& layout) {
  analysis.atlas_base_rate = shares.base_rate;
  for (auto& site : analysis.sites)
    for (auto& row : site.rows) row.atlas_share = shares.share[layout.flat(row.neuron)];
}

}  // namespace nt
