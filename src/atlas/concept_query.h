#pragma once
// Concept search over an atlas (the monosemanticity view): for each unit, the share of its top
// contexts that have a concept word within `window` tokens of the token the context stands for,
// against the base rate: the same share over the atlas's hash-chosen sample records (random
// tokens of the corpus, every unit's sample pooled). A unit whose top contexts are all war text has
// share 1; a polysemantic one spreads its top contexts over several topics and has a low share.
// A concept word matches whole words of the context's text (its tokens decoded) case-insensitively
// (ASCII): "arm" matches "arm" and "Arm's", not "army" or "farm"; letters, digits and non-ASCII
// bytes are word characters. It counts when the word overlaps one of the `window` tokens either
// side of the context's token (or that token). A word may be a phrase ("world war").
#include <string>
#include <vector>

#include "atlas/atlas_state.h"
#include "tokenizer/tokenizer.h"

namespace nt {

struct ConceptShare {
  size_t unit = 0;
  double share = 0;  // of the unit's top contexts
  int contexts = 0;  // top contexts kept
  std::string example;  // the best context's text around its token
};

struct ConceptQuery {
  double base_rate = 0;
  std::vector<ConceptShare> units;
};

constexpr int kConceptWindow = 5;  // tokens either side of a context's token

// The concept words as given (atlas query --words, trace --words, a study concept's "words"):
// trimmed and lower-cased. Throws nt::OptionError("atlas.words") for no word or an empty one.
std::vector<std::string> concept_words(const std::vector<std::string>& words);

// Every unit's share, in unit order, and the base rate.
ConceptQuery concept_shares(const AtlasState& state, const Tokenizer& tokenizer, const std::vector<std::string>& words,
                            int window);
// concept_shares ranked: by share descending, then max activation.
ConceptQuery concept_query(const AtlasState& state, const Tokenizer& tokenizer, const std::vector<std::string>& words,
                           int window);

// Table (rank, site, unit, share, lift over the base rate, max, example) for the terminal and CSV.
std::string concept_query_text(const AtlasState& state, const ConceptQuery& q, size_t rows);
std::string concept_query_csv(const AtlasState& state, const ConceptQuery& q);

}  // namespace nt
