#include "atlas/unit_record.h"

#include <algorithm>

#include "atlas/histogram_bins.h"
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

nlohmann::json activation_record_json(const ContextRecord& r, const Tokenizer& tokenizer) {
  std::vector<std::string> raw;
  for (int32_t t : r.tokens) raw.push_back(tokenizer.token_bytes(t));
  return {{"dataclass_name", "ActivationRecord"},
          {"tokens", repair_token_texts(raw)},
          {"activations", r.acts},
          {"document", r.doc},
          {"position", r.pos},
          {"index", r.index}};
}

nlohmann::json unit_record_json(const AtlasState& s, size_t unit, const Tokenizer& tokenizer) {
  const NeuronId id = s.layout.id(unit);
  nlohmann::json top = nlohmann::json::array(), sample = nlohmann::json::array();
  for (const auto& r : s.top[unit]) top.push_back(activation_record_json(r, tokenizer));
  const std::vector<double> bounds = quantile_boundaries(s, unit);
  nlohmann::json by_quantile = nlohmann::json::array();
  for (size_t q = 0; q + 1 < bounds.size(); ++q) by_quantile.push_back(nlohmann::json::array());
  for (const auto& r : s.samples[unit]) {
    sample.push_back(activation_record_json(r, tokenizer));
    size_t q = 0;
    while (q + 2 < bounds.size() && r.value >= bounds[q + 1]) ++q;
    if (!by_quantile.empty()) by_quantile[q].push_back(sample.back());
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
  return {{"dataclass_name", "NeuronRecord"},
          {"neuron_id", {{"dataclass_name", "NeuronId"}, {"layer_index", id.layer}, {"neuron_index", id.index}}},
          {"site", site_name(s.layout.sites[static_cast<size_t>(id.site)])},
          {"most_positive_activation_records", top},
          {"random_sample", sample},
          {"random_sample_by_quantile", by_quantile},
          {"quantile_boundaries", bounds},
          {"mean", s.moments[unit].mean},
          {"variance", s.variance(unit)},
          {"skewness", s.skewness(unit)},
          {"kurtosis", s.kurtosis(unit)},
          {"count", s.tokens},
          {"min", s.tokens ? nlohmann::json(s.min[unit]) : nlohmann::json(nullptr)},
          {"max", s.tokens ? nlohmann::json(s.max[unit]) : nlohmann::json(nullptr)},
          {"density", {{"above_zero", static_cast<double>(s.positive[unit]) / n},
                       {"above_threshold", static_cast<double>(s.above[unit]) / n},
                       {"threshold", s.settings.threshold}}},
          {"histogram", {{"bins", bins}, {"layout", "[lower edge or null, upper edge or null, count] of non-empty bins"}}}};
}

}  // namespace nt
