#include "atlas/atlas_html.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "atlas/histogram_bins.h"
#include "atlas/unit_record.h"
#include "report/base64.h"
#include "util/message_text.h"
#include "report/neuron_page.h"

namespace nt {

namespace {

constexpr const char* kStyle = R"(<style>
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}
th{cursor:pointer;background:#f4f4f4}td.l,th.l{text-align:left}td:first-child{white-space:nowrap}
.ctx{font-family:ui-monospace,monospace;font-size:13px;line-height:1.7;margin:4px 0 10px;white-space:pre-wrap;word-break:break-word}
.ctx span{border-radius:2px}.ctx .max{outline:2px solid #000}
.meta{color:#666;font-size:12px}h2{margin-top:1.4em}
</style>)";

std::string unit_title(const AtlasState& s, size_t unit) {
  const NeuronId id = s.layout.id(unit);
  return s.layout.sites[static_cast<size_t>(id.site)].name() + " " + s.layout.label(id);
}

std::string context_html(const ContextRecord& r, const Tokenizer& tokenizer, float scale) {
  std::vector<std::string> raw;
  for (int32_t t : *r.tokens) raw.push_back(tokenizer.token_bytes(t));
  const auto texts = repair_token_texts(raw);
  std::string out = fmt::format("<div class=meta>{:.4g} — document {}, position {}</div><div class=ctx>", r.value, r.doc, r.pos);
  for (size_t i = 0; i < texts.size(); ++i)
    out += fmt::format("<span{} style=\"background:{}\" title=\"{:.4g}\">{}</span>", static_cast<int>(i) == r.index ? " class=max" : "",
                       activation_colour(r.acts[i], scale), r.acts[i], html_escape(texts[i]));
  return out + "</div>\n";
}

// Log-count bars of the unit's non-empty bin range, with the activations at both ends and at 0
// (when in range) under the bars, and the highest bin's count beside the top.
std::string histogram_svg(const AtlasState& s, size_t unit) {
  const int64_t* h = s.histogram.data() + unit * kHistogramBins;
  int lo = kHistogramBins, hi = -1;
  for (int b = 0; b < kHistogramBins; ++b)
    if (h[b]) lo = std::min(lo, b), hi = std::max(hi, b);
  if (hi < 0) return "<p>no tokens</p>";
  static const std::vector<double> edges = histogram_edges();
  const int64_t peak = *std::max_element(h + lo, h + hi + 1);
  const double top = std::log10(1.0 + static_cast<double>(peak));
  const int bar = std::max(4, 600 / (hi - lo + 1)), width = bar * (hi - lo + 1), left = 50;
  std::string out = fmt::format("<svg width={} height=150 font-size=11><rect x={} y=0 width={} height=116 fill=\"#fafafa\"/>",
                                left + width + 60, left, width);
  for (int b = lo; b <= hi; ++b) {
    const double height = top > 0 ? 110.0 * std::log10(1.0 + static_cast<double>(h[b])) / top : 0;
    const std::string range = fmt::format("{} .. {}", b == 0 ? std::string("-inf") : fmt::format("{:.4g}", edges[static_cast<size_t>(b - 1)]),
                                          b == kHistogramBins - 1 ? std::string("inf") : fmt::format("{:.4g}", edges[static_cast<size_t>(b)]));
    out += fmt::format("<rect x={} y={:.1f} width={} height={:.1f} fill=\"{}\"><title>{}: {} tokens</title></rect>", left + (b - lo) * bar,
                       116 - height, bar - 1, height, b >= kHistogramCentre ? "#e8743b" : "#3b7be8", range, h[b]);
  }
  auto tick = [&](double x, const std::string& label, const char* anchor) {
    return fmt::format("<line x1={0:.1f} x2={0:.1f} y1=116 y2=121 stroke=\"#444\"/><text x={0:.1f} y=134 text-anchor={1}>{2}</text>",
                       x, anchor, label);
  };
  out += fmt::format("<line x1={} x2={} y1=116 y2=116 stroke=\"#444\"/>", left, left + width);
  out += tick(left, fmt::format("{:.3g}", s.min[unit]), "start") + tick(left + width, fmt::format("{:.3g}", s.max[unit]), "end");
  if (lo < kHistogramCentre && kHistogramCentre < hi)  // 0 between the extremes' bins: the centre bin's middle
    out += tick(left + (kHistogramCentre - lo + 0.5) * bar, "0", "middle");
  out += fmt::format("<text x={} y=10 text-anchor=end>{}</text><text x={} y=114 text-anchor=end>0</text>", left - 4, peak, left - 4);
  return out + fmt::format("<text x={} y=148 fill=\"#666\">activation (bins of a quarter octave; bar height: tokens, log scale)</text></svg>", left);
}

std::string logit_table(const LogitEffect& e, const Tokenizer& tokenizer) {
  if (e.top_ids.empty()) return "<p>none for this site or model</p>";
  std::string out = "<table><tr><th class=l>pushed up</th><th></th><th class=l>pushed down</th><th></th></tr>";
  for (size_t i = 0; i < e.top_ids.size(); ++i)
    out += fmt::format("<tr><td class=l><code>{}</code></td><td>{:.4f}</td><td class=l><code>{}</code></td><td>{:.4f}</td></tr>",
                       html_escape(escape_for_message(tokenizer.token_bytes(e.top_ids[i]))), e.top_values[i],
                       html_escape(escape_for_message(tokenizer.token_bytes(e.bottom_ids[i]))), e.bottom_values[i]);
  return out + "</table>";
}

}  // namespace

std::string atlas_unit_html(const AtlasState& s, size_t unit, const Tokenizer& tokenizer, const LogitEffect& effect) {
  const double n = static_cast<double>(std::max<int64_t>(1, s.tokens));
  float scale = 0;
  for (const auto& r : s.top[unit])
    for (float a : r.acts) scale = std::max(scale, std::abs(a));
  std::string out = "<!doctype html><html><head><meta charset=utf-8><title>" + unit_title(s, unit) + "</title>" + kStyle +
                    "</head><body><p><a href=\"../../index.html\">← atlas index</a></p><h1>" + unit_title(s, unit) + "</h1>";
  out += fmt::format(
      "<table><tr><th>tokens</th><th>mean</th><th>std</th><th>min</th><th>max</th><th>&gt; 0</th><th>&gt; {}</th>"
      "<th>skewness</th><th>kurtosis</th></tr><tr><td>{}</td><td>{:.4g}</td><td>{:.4g}</td><td>{:.4g}</td><td>{:.4g}</td>"
      "<td>{:.2f}%</td><td>{:.3f}%</td><td>{:.3g}</td><td>{:.3g}</td></tr></table>",
      s.settings.threshold, s.tokens, s.moments[unit].mean, std::sqrt(s.variance(unit)), s.min[unit], s.max[unit],
      100 * static_cast<double>(s.positive[unit]) / n, 100 * static_cast<double>(s.above[unit]) / n, s.skewness(unit),
      s.kurtosis(unit));
  out += "<h2>Histogram</h2>" + histogram_svg(s, unit) + "<h2>Logit effects</h2>" + logit_table(effect, tokenizer);
  out += "<h2>Top contexts</h2>";
  for (const auto& r : s.top[unit]) out += context_html(r, tokenizer, scale);
  const std::vector<double> bounds = quantile_boundaries(s, unit);
  out += "<h2>Random sample by quantile</h2>";
  for (size_t q = 0; q + 1 < bounds.size(); ++q) {
    out += fmt::format("<h3>quantiles {} – {} ({:.4g} .. {:.4g})</h3>", kQuantiles[q], kQuantiles[q + 1], bounds[q], bounds[q + 1]);
    for (const auto& r : s.samples[unit])
      if (r.value >= bounds[q] && (r.value < bounds[q + 1] || q + 2 == bounds.size())) out += context_html(r, tokenizer, scale);
  }
  return out + "</body></html>\n";
}

std::string atlas_index_data(const AtlasState& s, const Tokenizer& tokenizer) {
  nlohmann::json sites = nlohmann::json::array();
  for (const TraceSite& site : s.layout.sites) sites.push_back(site.name());
  nlohmann::json rows = nlohmann::json::array();
  for (size_t u = 0; u < s.layout.total; ++u) {
    const NeuronId id = s.layout.id(u);
    std::set<std::string> words;
    for (const auto& r : s.top[u]) {
      std::string w = whole_characters(*r.tokens, static_cast<size_t>(r.index), tokenizer);
      w.erase(0, w.find_first_not_of(" \n\t"));
      w = escape_for_message(w);
      std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      if (!w.empty()) words.insert(w);
    }
    std::string joined;
    for (const auto& w : words) joined += (joined.empty() ? "" : " ") + w;
    const double sd = std::sqrt(s.variance(u));
    rows.push_back({id.site, id.layer, id.index, s.density(u), s.tokens ? s.max[u] : 0.0f,
                    s.moments[u].mean, sd > 0 ? (s.max[u] - s.moments[u].mean) / sd : 0.0, joined, s.layout.label(id)});
  }
  return "const ATLAS = " +
         nlohmann::json{{"sites", sites}, {"tokens", s.tokens}, {"rows", rows}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) +
         ";\n";
}

std::string atlas_index_html(const AtlasState& s) {
  return std::string("<!doctype html><html><head><meta charset=utf-8><title>neurontrace atlas</title>") + kStyle +
         fmt::format("</head><body><h1>Atlas: {} units, {} tokens, {} documents</h1>", s.layout.total, s.tokens, s.documents) +
         R"(<p>Search the tokens of top contexts: <input id=q size=20 placeholder="word"> <span id=count></span>
<button id=prev>◀</button> <span id=page></span> <button id=next>▶</button></p>
<table><thead><tr><th class=l data-k=0>unit</th><th data-k=3>density &gt; 0</th><th data-k=4>max</th><th data-k=5>mean</th>
<th data-k=6>selectivity</th><th class=l>top-context tokens</th></tr></thead><tbody id=rows></tbody></table>
<script src="index-data.js"></script>
<script>
const PAGE = 100; let rows = ATLAS.rows, key = 4, desc = true, page = 0;
const label = r => ATLAS.sites[r[0]] + ' ' + r[8];
const esc = t => t.replace(/[&<>"]/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;'}[c]));
function view() {
  const q = document.getElementById('q').value.trim().toLowerCase();
  let v = q ? ATLAS.rows.filter(r => (' ' + r[7] + ' ').includes(' ' + q)) : ATLAS.rows.slice();
  v.sort((a, b) => key === 0 ? 0 : (desc ? b[key] - a[key] : a[key] - b[key]));
  const pages = Math.max(1, Math.ceil(v.length / PAGE)); page = Math.min(page, pages - 1);
  document.getElementById('count').textContent = v.length + ' units';
  document.getElementById('page').textContent = 'page ' + (page + 1) + ' / ' + pages;
  document.getElementById('rows').innerHTML = v.slice(page * PAGE, (page + 1) * PAGE).map(r =>
    '<tr><td class=l><a href="units/' + ATLAS.sites[r[0]] + '/' + r[8] + '.html">' + label(r) + '</a></td><td>' +
    (100 * r[3]).toFixed(2) + '%</td><td>' + r[4].toFixed(3) + '</td><td>' + r[5].toFixed(4) + '</td><td>' + r[6].toFixed(1) +
    '</td><td class=l>' + esc(r[7].slice(0, 120)) + '</td></tr>').join('');
}
document.querySelectorAll('th[data-k]').forEach(th => th.onclick = () => {
  const k = +th.dataset.k; desc = k === key ? !desc : true; key = k; page = 0; view(); });
document.getElementById('q').oninput = () => { page = 0; view(); };
document.getElementById('prev').onclick = () => { page = Math.max(0, page - 1); view(); };
document.getElementById('next').onclick = () => { page++; view(); };
view();
</script></body></html>
)";
}

}  // namespace nt
