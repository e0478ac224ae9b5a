#include "atlas/concept_query.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "report/base64.h"
#include "util/option_error.h"

namespace nt {

namespace {

bool word_byte(char c) {
  const auto u = static_cast<unsigned char>(c);
  return std::isalnum(u) || u >= 0x80;
}

char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

class ConceptMatcher {
 public:
  ConceptMatcher(const Tokenizer& tokenizer, std::vector<std::string> words, int window)
      : tokenizer_(tokenizer), words_(std::move(words)), window_(window) {}
  // A concept word, as a whole word of the decoded text, overlapping a token within `window` tokens
  // of the record's token. The text decoded reaches kMargin tokens further so that a word cut at
  // the window's edge ("arm" of "army") is seen whole.
  bool near(const ContextRecord& r) const {
    const int n = static_cast<int>(r.tokens->size());
    const int lo = std::max(0, r.index - window_), hi = std::min(n - 1, r.index + window_);
    std::string text;
    size_t from = 0, to = 0;  // bytes of tokens lo..hi in text
    for (int i = std::max(0, lo - kMargin); i <= std::min(n - 1, hi + kMargin); ++i) {
      if (i == lo) from = text.size();
      for (char c : tokenizer_.token_bytes((*r.tokens)[static_cast<size_t>(i)])) text += lower(c);
      if (i == hi) to = text.size();
    }
    for (const std::string& w : words_)
      for (size_t at = text.find(w); at != std::string::npos; at = text.find(w, at + 1)) {
        const size_t end = at + w.size();
        const bool whole = (at == 0 || !word_byte(text[at - 1])) && (end == text.size() || !word_byte(text[end]));
        if (whole && at < to && end > from) return true;
      }
    return false;
  }

 private:
  static constexpr int kMargin = 8;
  const Tokenizer& tokenizer_;
  std::vector<std::string> words_;
  int window_;
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

std::vector<std::string> concept_words(const std::vector<std::string>& words) {
  if (words.empty()) throw OptionError("atlas.words", "needs at least one word");
  std::vector<std::string> out;
  for (const std::string& w : words) {
    const size_t first = w.find_first_not_of(" \t"), last = w.find_last_not_of(" \t");
    if (first == std::string::npos) throw OptionError("atlas.words", "has an empty word");
    std::string t;
    for (char c : w.substr(first, last - first + 1)) t += lower(c);
    out.push_back(std::move(t));
  }
  return out;
}

ConceptQuery concept_shares(const AtlasState& s, const Tokenizer& tokenizer, const std::vector<std::string>& words,
                            int window) {
  if (window < 0) throw OptionError("atlas.window", "must not be negative");
  const ConceptMatcher matcher(tokenizer, concept_words(words), window);
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
  return q;
}

ConceptQuery concept_query(const AtlasState& s, const Tokenizer& tokenizer, const std::vector<std::string>& words,
                           int window) {
  ConceptQuery q = concept_shares(s, tokenizer, words, window);
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
