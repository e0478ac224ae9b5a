#include "analysis/overlap.h"

#include <algorithm>
#include <set>

namespace nt {

OverlapMatrix overlap(const std::vector<ConceptAnalysis>& analyses, size_t site, int top_n) {
  OverlapMatrix m;
  std::vector<std::set<std::pair<int, int>>> sets;
  for (const auto& a : analyses) {
    m.concepts.push_back(a.concept_name);
    std::set<std::pair<int, int>> s;
    const auto& rows = a.sites.at(site).rows;
    for (size_t i = 0; i < rows.size() && static_cast<int>(i) < top_n; ++i)
      s.insert({rows[i].neuron.layer, rows[i].neuron.index});
    sets.push_back(std::move(s));
  }
  const size_t n = sets.size();
  m.shared.assign(n, std::vector<double>(n, 0.0));
  m.jaccard.assign(n, std::vector<double>(n, 0.0));
  for (size_t i = 0; i < n; ++i)
    for (size_t j = 0; j < n; ++j) {
      size_t both = 0;
      for (const auto& x : sets[i]) both += sets[j].count(x);
      const size_t uni = sets[i].size() + sets[j].size() - both;
      m.shared[i][j] = static_cast<double>(both);
      m.jaccard[i][j] = uni ? static_cast<double>(both) / static_cast<double>(uni) : 0.0;
    }
  return m;
}

}  // namespace nt
