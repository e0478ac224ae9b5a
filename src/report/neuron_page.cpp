#include "report/neuron_page.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "report/base64.h"

namespace nt {

namespace {

struct Rgb8 {
  double r, g, b;
};

// White -> light -> saturated, in two linear segments (ColorBrewer RdYlBu ends).
constexpr Rgb8 kWhite{255, 255, 255};
constexpr Rgb8 kPosMid{253, 174, 97}, kPosEnd{215, 48, 39};
constexpr Rgb8 kNegMid{145, 191, 219}, kNegEnd{69, 117, 180};

Rgb8 lerp(const Rgb8& a, const Rgb8& b, double t) {
  return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}

Rgb8 colour_of(float activation, float max_abs) {
  if (!(max_abs > 0.0f) || !std::isfinite(activation)) return kWhite;
  const double t = std::min(1.0, std::abs(static_cast<double>(activation)) / max_abs);
  const bool pos = activation >= 0.0f;
  const Rgb8& mid = pos ? kPosMid : kNegMid;
  const Rgb8& end = pos ? kPosEnd : kNegEnd;
  return t <= 0.5 ? lerp(kWhite, mid, t / 0.5) : lerp(mid, end, (t - 0.5) / 0.5);
}

std::string hex(const Rgb8& c) {
  auto b = [](double v) { return static_cast<int>(std::lround(std::clamp(v, 0.0, 255.0))); };
  return fmt::format("#{:02x}{:02x}{:02x}", b(c.r), b(c.g), b(c.b));
}

bool dark(const Rgb8& c) { return (0.2126 * c.r + 0.7152 * c.g + 0.0722 * c.b) / 255.0 < 0.5; }

std::string num(double v) {
  if (!std::isfinite(v)) return "n/a";
  if (std::abs(v) >= 1000.0) return fmt::format("{:.1f}", v);
  return fmt::format("{:.3f}", v);
}

// A token's text for display inside a white-space: pre-wrap container: escaped, newlines shown
// as a visible return mark followed by the line break, carriage returns as a mark alone.
std::string token_display(const std::string& text) {
  std::string out;
  const std::string esc = html_escape(text);
  for (char c : esc) {
    if (c == '\n') out += "<span class=\"np-ws\">\xE2\x86\xB5</span>\n";
    else if (c == '\r') out += "<span class=\"np-ws\">\xE2\x90\x8D</span>";
    else if (c == '\t') out += "<span class=\"np-ws\">\xE2\x86\x92</span>\t";
    else out += c;
  }
  return out;
}

// The record's token texts with characters split across tokens put back together (valid UTF-8).
std::vector<std::string> record_texts(const ActivationRecord& r) {
  std::vector<std::string> raw;
  raw.reserve(r.tokens.size());
  for (const auto& t : r.tokens) raw.push_back(t.text);
  return repair_token_texts(raw);
}

float page_max_abs(const NeuronPage& page) {
  float m = 0.0f;
  for (const auto& r : page.top_records)
    for (const auto& t : r.tokens)
      if (std::isfinite(t.activation)) m = std::max(m, std::abs(t.activation));
  return m;
}

}  // namespace

std::string html_escape(std::string_view text) {
  const std::string s = sanitize_utf8(text);
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string activation_colour(float activation, float max_abs) { return hex(colour_of(activation, max_abs)); }

std::string_view neuron_page_css() {
  return R"css(
.neuron-page{border:1px solid #d0d7de;border-radius:8px;padding:14px 18px;margin:18px 0;background:#fff}
.neuron-page h3{margin:0 0 8px;font-size:18px;display:flex;gap:10px;align-items:baseline;flex-wrap:wrap}
.np-label{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace}
.np-site{font-size:13px;font-weight:normal;color:#57606a;background:#f6f8fa;border:1px solid #d0d7de;border-radius:10px;padding:0 8px}
.np-stats{display:flex;flex-wrap:wrap;gap:6px 22px;margin:0 0 10px;font-size:14px}
.np-stats div{display:flex;gap:6px}
.np-stats dt{color:#57606a}
.np-stats dd{margin:0;font-weight:600;font-variant-numeric:tabular-nums}
.np-legend{display:flex;align-items:center;gap:8px;font-size:12px;color:#57606a;margin-bottom:8px}
.np-legend .bar{width:160px;height:10px;border:1px solid #d0d7de;border-radius:2px;background:linear-gradient(to right,#4575b4,#91bfdb,#ffffff,#fdae61,#d73027)}
.np-record{border-top:1px solid #eaeef2;padding:8px 0}
.np-meta{font-size:12px;color:#57606a;margin-bottom:4px}
.np-tokens{white-space:pre-wrap;word-break:break-word;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:13px;line-height:1.75}
.np-tok{border-radius:2px;padding:1px 0}
.np-ws{color:#8c959f}
.np-empty{color:#57606a;font-style:italic}
)css";
}

std::string neuron_page_html(const NeuronPage& page) {
  const float max_abs = page_max_abs(page);
  const std::string label = page.label.empty() ? fmt::format("L{}N{}", page.layer, page.neuron) : html_escape(page.label);
  std::string out = "<section class=\"neuron-page\">\n";
  out += fmt::format("<h3><span class=\"np-label\">{}</span>", label);
  if (!page.site.empty()) out += fmt::format(" <span class=\"np-site\">{}</span>", html_escape(page.site));
  out += "</h3>\n<dl class=\"np-stats\">\n";
  auto stat = [&](const std::string& name, const std::string& value) {
    out += fmt::format("<div><dt>{}</dt><dd>{}</dd></div>\n", name, value);
  };
  if (!page.concept_name.empty()) stat("Concept", html_escape(page.concept_name));
  if (!page.positions.empty()) stat("Positions", html_escape(page.positions));
  const double pct = page.max_occurrences > 0 ? 100.0 * page.occurrences / page.max_occurrences : 0.0;
  stat("Occurrences", fmt::format("{} / {} ({:.0f}%)", page.occurrences, page.max_occurrences, pct));
  stat("Concept mean", num(page.concept_mean));
  stat("Baseline mean", page.baseline_mean ? num(*page.baseline_mean) : "&ndash;");
  stat("Cohen&#39;s d", !page.cohens_d                  ? "&ndash;"
                        : std::isfinite(*page.cohens_d) ? fmt::format("{:.2f}", *page.cohens_d)
                                                        : "n/a");
  if (page.density) stat("Density", fmt::format("{:.1f}%", 100.0 * *page.density));
  out += "</dl>\n";
  if (page.top_records.empty()) {
    out += "<p class=\"np-empty\">No activation records.</p>\n</section>\n";
    return out;
  }
  out += fmt::format(
      "<div class=\"np-legend\"><span>{}</span><span class=\"bar\"></span><span>+{}</span>"
      "<span>(colour: activation; hover a token for its value)</span></div>\n",
      max_abs > 0 ? "&minus;" + num(max_abs) : num(0.0), num(max_abs));
  for (size_t i = 0; i < page.top_records.size(); ++i) {
    const ActivationRecord& r = page.top_records[i];
    out += "<div class=\"np-record\">\n";
    out += fmt::format("<div class=\"np-meta\">#{} &middot; prompt {}", i + 1, r.prompt_index);
    if (!r.prompt_group.empty()) out += " (" + html_escape(r.prompt_group) + ")";
    out += fmt::format(" &middot; max activation {}</div>\n<div class=\"np-tokens\">", num(r.max_activation));
    const std::vector<std::string> texts = record_texts(r);
    for (size_t k = 0; k < r.tokens.size(); ++k) {
      const float a = r.tokens[k].activation;
      const Rgb8 c = colour_of(a, max_abs);
      out += fmt::format("<span class=\"np-tok\" style=\"background:{}{}\" title=\"{}\">{}</span>", hex(c),
                         dark(c) ? ";color:#fff" : "", fmt::format("{}", a), token_display(texts[k]));
    }
    out += "</div>\n</div>\n";
  }
  out += "</section>\n";
  return out;
}

nlohmann::json neuron_record_json(const NeuronPage& page) {
  using nlohmann::json;
  std::vector<const ActivationRecord*> order;
  for (const auto& r : page.top_records) order.push_back(&r);
  std::stable_sort(order.begin(), order.end(),
                   [](const ActivationRecord* a, const ActivationRecord* b) { return a->max_activation > b->max_activation; });

  json records = json::array();
  std::vector<double> all;
  for (const ActivationRecord* r : order) {
    json tokens = json::array(), acts = json::array();
    for (const std::string& text : record_texts(*r)) tokens.push_back(text);
    for (const auto& t : r->tokens) {
      acts.push_back(t.activation);  // NaN/inf serialise as null
      if (std::isfinite(t.activation)) all.push_back(t.activation);
    }
    records.push_back({{"dataclass_name", "ActivationRecord"}, {"tokens", tokens}, {"activations", acts}});
  }

  // Moments over the records' tokens.
  json mean = nullptr, variance = nullptr, skewness = nullptr, kurtosis = nullptr;
  const double n = static_cast<double>(all.size());
  if (!all.empty()) {
    double m = 0.0;
    for (double v : all) m += v;
    m /= n;
    mean = m;
    double m2 = 0.0, m3 = 0.0, m4 = 0.0;
    for (double v : all) {
      const double d = v - m;
      m2 += d * d;
      m3 += d * d * d;
      m4 += d * d * d * d;
    }
    m2 /= n;
    m3 /= n;
    m4 /= n;
    if (all.size() >= 2) variance = m2;  // population variance, as numpy's default
    if (m2 > 0.0 && all.size() >= 3) skewness = m3 / std::pow(m2, 1.5);
    if (m2 > 0.0 && all.size() >= 4) kurtosis = m4 / (m2 * m2) - 3.0;
  }

  return {{"dataclass_name", "NeuronRecord"},
          {"neuron_id", {{"dataclass_name", "NeuronId"}, {"layer_index", page.layer}, {"neuron_index", page.neuron}}},
          {"random_sample", json::array()},
          {"random_sample_by_quantile", nullptr},
          {"quantile_boundaries", nullptr},
          {"mean", mean},
          {"variance", variance},
          {"skewness", skewness},
          {"kurtosis", kurtosis},
          {"most_positive_activation_records", records}};
}

}  // namespace nt
