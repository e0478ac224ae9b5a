#include "atlas/unit_record.h"

#include <algorithm>

#include "atlas/histogram_bins.h"
#include <fmt/format.h>

#include <iterator>

#include "report/base64.h"

namespace nt {

std::vector<double> quantile_boundaries(const AtlasState& s, size_t unit) {
  static const std::vector<double> edges = histogram_edges();
  const int64_t* h = s.histogram.data() + unit * kHistogramBins;
  const double lo_all = s.min[unit], hi_all = s.max[unit];
  std::vector<double> out;
  for (double q : kQuantiles) {
    if (s.tokens == 0) break;
    const double target = q * static_cast<double>(s.tokens);
    double below = 0;
    double value = hi_all;
    for (int b = 0; b < kHistogramBins; ++b) {
      const double c = static_cast<double>(h[b]);
      if (c > 0 && below + c >= target) {
        // Interpolate inside the bin, its open ends bounded by the unit's min and max.
        const double lo = std::max(lo_all, b == 0 ? lo_all : edges[static_cast<size_t>(b - 1)]);
        const double hi = std::min(hi_all, b == kHistogramBins - 1 ? hi_all : edges[static_cast<size_t>(b)]);
        value = lo + (hi - lo) * std::clamp((target - below) / c, 0.0, 1.0);
        break;
      }
      below += c;
    }
    out.push_back(q == 0.0 ? lo_all : q == 1.0 ? hi_all : value);
  }
  return out;
}

namespace {

std::string json_string(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

UnitRecordWriter::UnitRecordWriter(const Tokenizer& tokenizer) : tokenizer_(tokenizer) {
  const int n = tokenizer.vocab_size();
  escaped_.resize(static_cast<size_t>(n));
  whole_.resize(static_cast<size_t>(n));
  for (int id = 0; id < n; ++id) {
    const std::string bytes = tokenizer.token_bytes(id);
    escaped_[static_cast<size_t>(id)] = json_string(bytes);
    whole_[static_cast<size_t>(id)] = repair_token_texts({bytes})[0] == bytes;
  }
}

void UnitRecordWriter::append_record(std::string& out, const ContextRecord& r) const {
  out += R"({"dataclass_name":"ActivationRecord","tokens":[)";
  bool whole = true;
  for (int32_t t : *r.tokens) whole = whole && t >= 0 && t < static_cast<int32_t>(whole_.size()) && whole_[static_cast<size_t>(t)];
  if (whole) {
    for (size_t i = 0; i < r.tokens->size(); ++i) (out += i ? "," : "") += escaped_[static_cast<size_t>((*r.tokens)[i])];
  } else {
    std::vector<std::string> raw;
    for (int32_t t : *r.tokens) raw.push_back(tokenizer_.token_bytes(t));
    const auto texts = repair_token_texts(raw);
    for (size_t i = 0; i < texts.size(); ++i) (out += i ? "," : "") += json_string(texts[i]);
  }
  out += R"(],"activations":[)";
  for (size_t i = 0; i < r.acts.size(); ++i) fmt::format_to(std::back_inserter(out), "{}{}", i ? "," : "", r.acts[i]);
  fmt::format_to(std::back_inserter(out), R"(],"document":{},"position":{},"index":{}}})", r.doc, r.pos, r.index);
}

std::string UnitRecordWriter::json(const AtlasState& s, size_t unit, const LogitEffect& effect) const {
  const NeuronId id = s.layout.id(unit);
  const std::vector<double> bounds = quantile_boundaries(s, unit);
  std::vector<std::vector<const ContextRecord*>> by_quantile(bounds.empty() ? 0 : bounds.size() - 1);
  for (const auto& r : s.samples[unit]) {
    size_t q = 0;
    while (q + 2 < bounds.size() && r.value >= bounds[q + 1]) ++q;
    if (!by_quantile.empty()) by_quantile[q].push_back(&r);
  }
  static const std::vector<double> edges = histogram_edges();
  nlohmann::json bins = nlohmann::json::array();
  for (int b = 0; b < kHistogramBins; ++b) {
    const int64_t c = s.histogram[unit * kHistogramBins + static_cast<size_t>(b)];
    if (c == 0) continue;
    bins.push_back({b == 0 ? nlohmann::json(nullptr) : nlohmann::json(edges[static_cast<size_t>(b - 1)]),
                    b == kHistogramBins - 1 ? nlohmann::json(nullptr) : nlohmann::json(edges[static_cast<size_t>(b)]), c});
  }
  const double n = static_cast<double>(std::max<int64_t>(1, s.tokens));
  nlohmann::json logits = nullptr;
  if (!effect.top_ids.empty()) {
    auto list = [&](const std::vector<int>& ids, const std::vector<float>& values) {
      nlohmann::json l = nlohmann::json::array();
      for (size_t i = 0; i < ids.size(); ++i) l.push_back({repair_token_texts({tokenizer_.token_bytes(ids[i])})[0], values[i]});
      return l;
    };
    logits = {{"top", list(effect.top_ids, effect.top_values)}, {"bottom", list(effect.bottom_ids, effect.bottom_values)}};
  }
  const nlohmann::json fields = {
      {"dataclass_name", "NeuronRecord"},
      {"neuron_id", {{"dataclass_name", "NeuronId"}, {"layer_index", id.layer}, {"neuron_index", id.index}}},
      {"site", s.layout.sites[static_cast<size_t>(id.site)].name()},
      {"random_sample", nlohmann::json::array()},
      {"quantile_boundaries", bounds},
      {"mean", s.moments[unit].mean},
      {"variance", s.variance(unit)},
      {"skewness", s.skewness(unit)},
      {"kurtosis", s.kurtosis(unit)},
      {"count", s.tokens},
      {"min", s.tokens ? nlohmann::json(s.min[unit]) : nlohmann::json(nullptr)},
      {"max", s.tokens ? nlohmann::json(s.max[unit]) : nlohmann::json(nullptr)},
      {"density", {{"above_zero", s.density(unit)},
                   {"above_threshold", static_cast<double>(s.above[unit]) / n},
                   {"threshold", s.settings.threshold}}},
      {"logit_effects", logits},
      {"histogram", {{"bins", bins}, {"layout", "[lower edge or null, upper edge or null, count] of non-empty bins"}}}};
  std::string out = fields.dump();
  out.pop_back();  // the closing brace: the records follow
  out += R"(,"most_positive_activation_records":[)";
  for (size_t i = 0; i < s.top[unit].size(); ++i) {
    if (i) out += ',';
    append_record(out, s.top[unit][i]);
  }
  out += R"(],"random_sample_by_quantile":[)";
  for (size_t q = 0; q < by_quantile.size(); ++q) {
    out += q ? ",[" : "[";
    for (size_t i = 0; i < by_quantile[q].size(); ++i) {
      if (i) out += ',';
      append_record(out, *by_quantile[q][i]);
    }
    out += ']';
  }
  out += "]}\n";
  return out;
}

std::string whole_characters(const std::vector<int32_t>& ids, size_t i, const Tokenizer& tokenizer) {
  auto continues = [](const std::string& t) { return !t.empty() && (static_cast<unsigned char>(t[0]) & 0xC0) == 0x80; };
  std::string text = tokenizer.token_bytes(ids[i]);
  for (size_t b = i; b > 0 && b + 3 > i && continues(text); --b) text = tokenizer.token_bytes(ids[b - 1]) + text;
  for (size_t e = i + 1; e < ids.size() && e < i + 4 && sanitize_utf8(text) != text; ++e) {
    const std::string next = tokenizer.token_bytes(ids[e]);
    if (!continues(next)) break;
    text += next;
  }
  return text;
}

}  // namespace nt
