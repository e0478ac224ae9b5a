#include "atlas/concept_query.h"

#include <fmt/format.h>

#include <algorithm>
#include <unordered_map>

#include "report/base64.h"
#include "trace/token_selector.h"

namespace nt {

namespace {

class ConceptMatcher {
 public:
  ConceptMatcher(const Tokenizer& tokenizer, const std::vector<std::string>& words, int window)
      : tokenizer_(tokenizer), selector_(words, "", 0), window_(window) {}
  // A concept word within `window` tokens of the record's token.
  bool near(const ContextRecord& r) {
    const int lo = std::max(0, r.index - window_), hi = std::min<int>(static_cast<int>(r.tokens->size()) - 1, r.index + window_);
    for (int i = lo; i <= hi; ++i) {
      const int32_t t = (*r.tokens)[static_cast<size_t>(i)];
      auto it = cache_.find(t);
      if (it == cache_.end()) it = cache_.emplace(t, selector_.matches(tokenizer_.token_bytes(t))).first;
      if (it->second) return true;
    }
    return false;
  }

 private:
  const Tokenizer& tokenizer_;
  TokenSelector selector_;
  int window_;
  std::unordered_map<int32_t, bool> cache_;
};

std::string snippet(const ContextRecord& r, const Tokenizer& tokenizer) {
  std::vector<std::string> raw;
  const int lo = std::max(0, r.index - 8), hi = std::min<int>(static_cast<int>(r.tokens->size()), r.index + 4);
  for (int i = lo; i < hi; ++i) raw.push_back(tokenizer.token_bytes((*r.tokens)[static_cast<size_t>(i)]));
  const auto texts = repair_token_texts(raw);
  std::string out;
  for (size_t i = 0; i < texts.size(); ++i) {
    const bool here = static_cast<int>(i) + lo == r.index;
    out += here ? "[[" + texts[i] + "]]" : texts[i];
  }
  for (char& c : out)
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  return out;
}

}  // namespace

ConceptQuery concept_query(const AtlasState& s, const Tokenizer& tokenizer, const std::vector<std::string>& words, int window) {
  ConceptMatcher matcher(tokenizer, words, window);
  ConceptQuery q;
  int64_t sampled = 0, hits = 0;
  for (size_t u = 0; u < s.layout.total; ++u) {
    for (const auto& r : s.samples[u]) {
      ++sampled;
      hits += matcher.near(r);
    }
    ConceptShare c{u, 0, static_cast<int>(s.top[u].size()), ""};
    for (const auto& r : s.top[u]) c.share += matcher.near(r);
    if (c.contexts) c.share /= c.contexts;
    if (!s.top[u].empty()) c.example = snippet(s.top[u].front(), tokenizer);
    q.units.push_back(std::move(c));
  }
  q.base_rate = sampled ? static_cast<double>(hits) / static_cast<double>(sampled) : 0.0;
  std::stable_sort(q.units.begin(), q.units.end(), [&](const ConceptShare& a, const ConceptShare& b) {
    if (a.share != b.share) return a.share > b.share;
    return s.max[a.unit] > s.max[b.unit];
  });
  return q;
}

namespace {

std::string lift(const ConceptQuery& q, const ConceptShare& c) {
  return q.base_rate > 0 ? fmt::format("{:.1f}", c.share / q.base_rate) : "inf";
}

}  // namespace

std::string concept_query_text(const AtlasState& s, const ConceptQuery& q, size_t rows) {
  std::string out = fmt::format("Concept share of top contexts (base rate over random tokens: {:.2f}%)\n", 100 * q.base_rate);
  size_t site_width = 16;  // SAE sites ("blocks.2.hook_resid_post.hook_sae_acts_post") are longer
  for (const TraceSite& site : s.layout.sites) site_width = std::max(site_width, site.name().size());
  out += fmt::format("{:>4}  {:<{}} {:>9}  {:>7}  {:>6}  {:>8}  {}\n", "Rank", "Site", site_width, "Unit", "Share", "Lift",
                     "Max", "Best context");
  for (size_t i = 0; i < std::min(rows, q.units.size()); ++i) {
    const ConceptShare& c = q.units[i];
    const NeuronId id = s.layout.id(c.unit);
    out += fmt::format("{:>4}  {:<{}} {:>9}  {:>6.1f}%  {:>6}  {:>8.3f}  {}\n", i + 1,
                       s.layout.sites[static_cast<size_t>(id.site)].name(), site_width, s.layout.label(id),
                       100 * c.share, lift(q, c), s.max[c.unit], c.example);
  }
  return out;
}

std::string concept_query_csv(const AtlasState& s, const ConceptQuery& q) {
  std::string out = "rank,site,layer,index,share,base_rate,lift,contexts,max,best_context\n";
  for (size_t i = 0; i < q.units.size(); ++i) {
    const ConceptShare& c = q.units[i];
    const NeuronId id = s.layout.id(c.unit);
    std::string quoted;
    for (char ch : c.example) quoted += ch == '"' ? std::string("\"\"") : std::string(1, ch);
    out += fmt::format("{},{},{},{},{:.6g},{:.6g},{},{},{:.9g},\"{}\"\n", i + 1,
                       s.layout.sites[static_cast<size_t>(id.site)].name(), id.layer, id.index, c.share, q.base_rate,
                       lift(q, c), c.contexts, s.max[c.unit], quoted);
  }
  return out;
}

}  // namespace nt
