#pragma once
// Overlap between concepts: for every pair, how many of their top-N consistent neurons they
// share, and the Jaccard index of the two sets (the notes' overlap heatmaps).
#include <vector>

#include "analysis/consistency.h"

namespace nt {

struct OverlapMatrix {
  std::vector<std::string> concepts;
  std::vector<std::vector<double>> shared;   // [i][j] neurons in both top-N sets
  std::vector<std::vector<double>> jaccard;  // [i][j] shared / union
};

// Uses the first `top_n` rows of each concept's table at site index `site`.
OverlapMatrix overlap(const std::vector<ConceptAnalysis>& analyses, size_t site, int top_n);

}  // namespace nt
