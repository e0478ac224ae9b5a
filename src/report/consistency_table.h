#pragma once
// The consistency table in the notes' layout (terminal), as Markdown, and as CSV.
#include <string>
#include <vector>

#include "analysis/consistency.h"

namespace nt {

// The notes' table per site ("Rank  Layer  Neuron  Occurrences  %"), then the selectivity figures.
// Figures against the baseline read "–" without one (an empty field in the CSV).
std::string consistency_text(const ConceptAnalysis& a);
std::string consistency_markdown(const std::vector<ConceptAnalysis>& analyses);
std::string consistency_csv(const std::vector<ConceptAnalysis>& analyses);

}  // namespace nt
