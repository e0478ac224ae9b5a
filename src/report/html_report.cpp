#include "report/html_report.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <tuple>

#include "report/base64.h"
#include "sae/sae.h"
#include "util/atomic_file.h"

namespace nt {

namespace {

constexpr std::string_view kCss = R"css(
:root{--fg:#1f2328;--muted:#57606a;--border:#d0d7de;--alt:#f6f8fa;--accent:#0969da;--nav:#24292f}
*{box-sizing:border-box}
html{scroll-behavior:smooth}
body{margin:0;font-family:system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,"DejaVu Sans",sans-serif;color:var(--fg);background:#fff;line-height:1.5;font-size:15px}
.wrap{max-width:1200px;margin:0 auto;padding:0 24px}
header.top{background:var(--nav);color:#fff;position:sticky;top:0;z-index:10;box-shadow:0 1px 3px rgba(0,0,0,.25)}
header.top .wrap{display:flex;align-items:center;gap:24px;flex-wrap:wrap;padding-top:10px;padding-bottom:10px}
header.top .brand{font-weight:700;font-size:16px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis;max-width:420px}
nav{display:flex;flex-wrap:wrap;gap:4px 16px;font-size:14px}
nav a{color:#e6edf3;text-decoration:none;padding:2px 0;border-bottom:2px solid transparent}
nav a:hover{border-bottom-color:#e6edf3}
main{padding-bottom:48px}
h1{font-size:28px;margin:28px 0 8px}
h2{font-size:22px;margin:40px 0 12px;padding-bottom:6px;border-bottom:1px solid var(--border)}
h3{font-size:17px;margin:24px 0 8px}
h4{font-size:14px;margin:0 0 6px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
section,[id]{scroll-margin-top:64px}
p{margin:8px 0}
.muted{color:var(--muted)}
.lead{font-size:16px;max-width:900px}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace}
pre{background:var(--alt);border:1px solid var(--border);border-radius:6px;padding:12px 14px;overflow:auto;font-size:13px;max-height:560px}
details{margin:8px 0}
details>summary{cursor:pointer;font-weight:600;padding:4px 0}
table{border-collapse:collapse;font-size:14px}
table.kv th{text-align:left;font-weight:600;color:var(--muted);padding:3px 18px 3px 0;vertical-align:top}
table.kv td{padding:3px 0}
table.ct{font-variant-numeric:tabular-nums;margin:6px 0 4px;width:100%;min-width:900px;table-layout:fixed}
table.ct col.n{width:5.5%}table.ct col.m{width:9%}table.ct col.w{width:10%}table.ct col.s{width:20%}
table.ct th{background:var(--alt);font-weight:600;text-align:right;padding:6px 8px;border-bottom:2px solid var(--border);vertical-align:bottom}
table.ct td{text-align:right;padding:4px 8px;border-bottom:1px solid #eaeef2;white-space:nowrap}
table.ct tbody tr:nth-child(even){background:#f8f9fb}
table.ct tbody tr:hover{background:#eef4fb}
table.ct th.l,table.ct td.l{text-align:left;white-space:normal;min-width:170px}
table.ct td.strong{font-weight:700}
table.ct td.pct{min-width:84px;background-repeat:no-repeat;background-size:calc(100% - 20px) 3px;background-position:10px calc(100% - 3px)}
.chip{display:inline-block;font-size:12px;padding:0 7px;border-radius:10px;background:#ddf4ff;color:#0a3069;margin:1px 2px 1px 0}
.concept{margin:8px 0 28px}
.concept h3 .badge{font-size:13px;font-weight:normal;color:var(--muted);margin-left:8px}
.sitehead{font-size:13px;color:var(--muted);margin:10px 0 2px}
.scroll{overflow-x:auto}
.toc{display:flex;flex-wrap:wrap;gap:6px;margin:4px 0 12px}
.toc a{font-size:13px;text-decoration:none;color:var(--accent);border:1px solid var(--border);border-radius:12px;padding:1px 10px}
.toc a:hover{background:var(--alt)}
.warn{background:#fff8c5;border:1px solid #d4a72c;border-radius:6px;padding:8px 12px;margin:8px 0;font-size:14px}
.warn ul{margin:4px 0;padding-left:20px}
.heatmaps{display:flex;flex-wrap:wrap;gap:24px;align-items:flex-start}
.heatmaps figure{margin:0;flex:1 1 460px;max-width:100%;text-align:center}
.heatmaps img{max-width:100%;height:auto;border:1px solid var(--border);border-radius:6px}
.heatmaps figcaption{font-weight:600;margin:6px 0}
.heatmaps details{text-align:left}
.placeholder{border:1px dashed var(--border);border-radius:6px;padding:40px;color:var(--muted)}
ol.texts{padding-left:28px}
ol.texts li{margin:10px 0}
.gen{white-space:pre-wrap;word-break:break-word;background:var(--alt);border:1px solid #eaeef2;border-radius:6px;padding:8px 12px;font-size:14px}
.gen b{color:#0a3069}
.note{font-size:12px;color:var(--muted);margin-top:2px}
.steer-case{border:1px solid var(--border);border-radius:8px;padding:14px 18px;margin:18px 0}
.steer-case h3{margin-top:0}
.steer-grid{display:grid;grid-template-columns:1fr 1fr;gap:16px;margin:10px 0}
.steer-grid .tokens{white-space:pre-wrap;word-break:break-word;font-size:14px;border:1px solid #eaeef2;border-radius:6px;padding:8px 12px;background:#fff;min-height:60px}
.steer-grid .prompt{color:#0a3069;font-weight:700}
.diverged{background:#fff1c2}
.steered .diverged{background:#ffe0d6}
.divmark{color:#cf222e;font-weight:700;padding:0 2px}
footer{border-top:1px solid var(--border);margin-top:40px;padding:14px 0;font-size:13px;color:var(--muted)}
@media (max-width:800px){.steer-grid{grid-template-columns:1fr}}
)css";

std::string esc(std::string_view s) { return html_escape(s); }

std::string paragraphs(const std::string& text, const char* cls) {
  std::string out, para;
  auto flush = [&] {
    const auto b = para.find_first_not_of(" \t\n");
    if (b != std::string::npos) {
      const auto e = para.find_last_not_of(" \t\n");
      out += fmt::format("<p class=\"{}\">{}</p>\n", cls, esc(para.substr(b, e - b + 1)));
    }
    para.clear();
  };
  size_t i = 0;
  while (i <= text.size()) {
    const size_t nl = text.find('\n', i);
    const std::string line = text.substr(i, nl == std::string::npos ? std::string::npos : nl - i);
    if (line.find_first_not_of(" \t\r") == std::string::npos) flush();
    else para += (para.empty() ? "" : "\n") + line;
    if (nl == std::string::npos) break;
    i = nl + 1;
  }
  flush();
  return out;
}

std::string section_title(const PositionSection& s) {
  if (!s.title.empty()) return s.title;
  if (!s.analyses.empty()) return "positions: " + positions_name(s.analyses.front().positions);
  return "Results";
}

std::string fixed(double v, int decimals) {
  if (!std::isfinite(v)) return "n/a";
  if (std::abs(v) < 0.5 * std::pow(10.0, -decimals)) v = 0.0;  // no "-0.0000" for a tiny negative value
  return fmt::format("{:.{}f}", v, decimals);
}

// A figure measured against the baseline (times `scale`), or a dash when there was no baseline.
std::string fixed(const std::optional<double>& v, int decimals, const char* unit = "", double scale = 1.0) {
  return v ? fixed(*v * scale, decimals) + unit : "<span class=\"muted\">&ndash;</span>";
}

// For each (site, layer, index) in a section: the concepts (by index) whose table lists it.
using NeuronKey = std::tuple<int, int, int>;
std::map<NeuronKey, std::set<size_t>> table_membership(const PositionSection& s) {
  std::map<NeuronKey, std::set<size_t>> m;
  for (size_t c = 0; c < s.analyses.size(); ++c)
    for (size_t site = 0; site < s.analyses[c].sites.size(); ++site)
      for (const auto& r : s.analyses[c].sites[site].rows)
        m[{static_cast<int>(site), r.neuron.layer, r.neuron.index}].insert(c);
  return m;
}

std::string consistency_table_html(const PositionSection& s, size_t ci,
                                   const std::map<NeuronKey, std::set<size_t>>& membership) {
  const ConceptAnalysis& a = s.analyses[ci];
  std::string out;
  if (a.no_tokens || a.sites.empty()) out += "<p class=\"muted\">No tokens were recorded for this concept.</p>\n";
  for (size_t site = 0; site < a.sites.size(); ++site) {
    const SiteConsistency& sc = a.sites[site];
    out += fmt::format("<p class=\"sitehead\">site <code>{}</code>{} &middot; positions <code>{}</code> &middot; "
                       "max possible occurrences: <b>{}</b></p>\n",
                       esc(sc.site.is_sae() ? sc.site.name() : "blocks.*." + sc.site.name()),
                       sc.site.is_sae() ? " (SAE <code>" + esc(sc.site.sae->source()) + "</code>)" : "",
                       esc(positions_name(a.positions)), sc.max_occurrences);
    if (sc.rows.empty()) {
      out += "<p class=\"muted\">No tokens recorded: nothing to rank.</p>\n";
      continue;
    }
    const bool atlas = a.atlas_base_rate.has_value();
    out += "<div class=\"scroll\"><table class=\"ct\">\n<colgroup><col class=\"n\"><col class=\"n\"><col class=\"n\">"
           "<col class=\"w\"><col class=\"w\"><col class=\"m\"><col class=\"w\"><col class=\"w\"><col class=\"m\">"
           "<col class=\"n\"><col class=\"n\">" + std::string(atlas ? "<col class=\"n\">" : "") +
           "<col class=\"s\"></colgroup>\n<thead><tr><th>Rank</th><th>Layer</th><th>" +
           std::string(sc.site.is_features() ? "Feature" : "Neuron") +
           "</th><th>Occurrences</th><th>%</th><th>Mean score</th><th>Concept mean</th><th>Baseline mean</th>"
           "<th>Cohen&#39;s&nbsp;d</th><th>Density</th><th>&gt;p95</th>" +
           std::string(atlas ? "<th title=\"share of the neuron&#39;s atlas top contexts with a concept word\">Atlas share</th>" : "") +
           "<th class=\"l\">Also top for</th></tr></thead>\n<tbody>\n";
    for (const auto& r : sc.rows) {
      const double pct = std::clamp(r.percent, 0.0, 100.0);
      std::string shared;
      auto it = membership.find({static_cast<int>(site), r.neuron.layer, r.neuron.index});
      if (it != membership.end())
        for (size_t other : it->second)
          if (other != ci) shared += "<span class=\"chip\">" + esc(s.analyses[other].concept_name) + "</span>";
      out += fmt::format(
          "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td>"
          "<td class=\"pct\" style=\"background-image:linear-gradient(to right,#54aeff {:.1f}%,#eaeef2 {:.1f}%)\">{}%</td>"
          "<td>{}</td><td>{}</td><td>{}</td><td{}>{}</td><td>{}%</td><td>{}</td>{}<td class=\"l\">{}</td></tr>\n",
          r.rank, r.neuron.layer, r.neuron.index, r.occurrences, pct, pct, fixed(r.percent, 2), fixed(r.mean_score, 4),
          fixed(r.concept_mean, 4), fixed(r.baseline_mean, 4), std::abs(r.cohens_d.value_or(0.0)) >= 0.8 ? " class=\"strong\"" : "",
          fixed(r.cohens_d, 2), fixed(100.0 * r.density, 1), fixed(r.frac_above_p95, 0, "%", 100.0),
          atlas ? "<td>" + fixed(r.atlas_share, 0, "%", 100.0) + "</td>" : "",
          shared.empty() ? "<span class=\"muted\">&ndash;</span>" : shared);
    }
    out += "</tbody></table></div>\n";
    if (atlas)
      out += fmt::format("<p class=\"muted\">Atlas share: of each {}&#39;s atlas top contexts, those with a concept word "
                         "near the max token; base rate over random corpus tokens {}%.</p>\n",
                         esc(sc.site.unit_noun()), fixed(100.0 * *a.atlas_base_rate, 1));
  }
  if (!a.warnings.empty()) {
    out += "<div class=\"warn\"><ul>\n";
    for (const auto& w : a.warnings) out += "<li>" + esc(w) + "</li>\n";
    out += "</ul></div>\n";
  }
  return out;
}

// Tokens concatenated; from `div` on wrapped as diverged, with a marker at the divergence point.
std::string steer_tokens_html(const std::vector<std::string>& raw_tokens, int div) {
  const std::vector<std::string> tokens = repair_token_texts(raw_tokens);
  std::string out;
  const size_t d = div < 0 ? tokens.size() : std::min(tokens.size(), static_cast<size_t>(div));
  for (size_t i = 0; i < d; ++i) out += esc(tokens[i]);
  if (div >= 0) {
    out += "<span class=\"divmark\" title=\"first divergence (token " + std::to_string(div) + ")\">&#9656;</span>";
    out += "<span class=\"diverged\">";
    for (size_t i = d; i < tokens.size(); ++i) out += esc(tokens[i]);
    out += "</span>";
  }
  if (tokens.empty()) out += "<span class=\"muted\">(no tokens)</span>";
  return out;
}

}  // namespace

std::string study_report_html(const StudyReport& r) {
  const std::string title = r.title.empty() ? std::string("neurontrace study") : r.title;
  std::string out;
  out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
         "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n";
  out += "<title>" + esc(title) + "</title>\n<style>";
  out += kCss;
  out += neuron_page_css();
  out += "</style>\n</head>\n<body>\n";

  // Top navigation.
  out += "<header class=\"top\"><div class=\"wrap\"><span class=\"brand\">" + esc(title) + "</span><nav>";
  out += "<a href=\"#overview\">Overview</a>";
  for (size_t s = 0; s < r.sections.size(); ++s)
    out += fmt::format("<a href=\"#positions-{}\">{}</a>", s, esc(section_title(r.sections[s])));
  if (!r.overlap_heatmaps.empty()) out += "<a href=\"#overlap\">Overlap</a>";
  if (!r.generated.empty()) out += "<a href=\"#texts\">Generated texts</a>";
  if (!r.neuron_pages.empty()) out += "<a href=\"#neurons\">Neurons</a>";
  if (!r.steering.empty()) out += "<a href=\"#steering\">Steering</a>";
  out += "</nav></div></header>\n<main class=\"wrap\">\n";

  // Overview.
  out += "<section id=\"overview\">\n<h1>" + esc(title) + "</h1>\n";
  out += paragraphs(r.description, "lead");
  if (!r.model_description.empty() || !r.facts.empty()) {
    out += "<table class=\"kv\">\n";
    if (!r.model_description.empty()) out += "<tr><th>Model</th><td>" + esc(r.model_description) + "</td></tr>\n";
    for (const auto& [k, v] : r.facts) out += "<tr><th>" + esc(k) + "</th><td>" + esc(v) + "</td></tr>\n";
    out += "</table>\n";
  }
  if (!r.warnings.empty()) {
    out += "<div class=\"warn\"><b>Warnings</b><ul>\n";
    for (const auto& w : r.warnings) out += "<li>" + esc(w) + "</li>\n";
    out += "</ul></div>\n";
  }
  if (!r.config_json.empty())
    out += "<details><summary>Configuration</summary><pre>" + esc(r.config_json) + "</pre></details>\n";
  out += "</section>\n";

  // Consistency tables per position setting.
  for (size_t s = 0; s < r.sections.size(); ++s) {
    const PositionSection& sec = r.sections[s];
    out += fmt::format("<section id=\"positions-{}\">\n<h2>Most consistent neurons &mdash; {}</h2>\n", s,
                       esc(section_title(sec)));
    out += paragraphs(sec.note, "muted");
    if (sec.analyses.size() > 1) {
      out += "<div class=\"toc\">";
      for (size_t c = 0; c < sec.analyses.size(); ++c)
        out += fmt::format("<a href=\"#positions-{}-concept-{}\">{}</a>", s, c, esc(sec.analyses[c].concept_name));
      out += "</div>\n";
    }
    const auto membership = table_membership(sec);
    for (size_t c = 0; c < sec.analyses.size(); ++c) {
      out += fmt::format("<div class=\"concept\" id=\"positions-{}-concept-{}\">\n<h3>{}</h3>\n", s, c,
                         esc(sec.analyses[c].concept_name));
      out += consistency_table_html(sec, c, membership);
      out += "</div>\n";
    }
    out += "</section>\n";
  }

  // Overlap heatmaps, side by side.
  if (!r.overlap_heatmaps.empty()) {
    out += "<section id=\"overlap\">\n<h2>Overlap between concepts</h2>\n<div class=\"heatmaps\">\n";
    for (const auto& h : r.overlap_heatmaps) {
      out += "<figure>";
      if (h.png.empty()) out += "<div class=\"placeholder\">(no image)</div>";
      else
        out += "<img alt=\"" + esc(h.caption.empty() ? std::string("overlap heatmap") : h.caption) +
               "\" src=\"data:image/png;base64," + base64_encode(h.png) + "\">";
      if (!h.caption.empty()) out += "<figcaption>" + esc(h.caption) + "</figcaption>";
      if (!h.csv.empty()) out += "<details><summary>Values (CSV)</summary><pre>" + esc(h.csv) + "</pre></details>";
      out += "</figure>\n";
    }
    out += "</div>\n" + paragraphs(r.overlap_note, "muted") + "</section>\n";
  }

  // Generated texts.
  if (!r.generated.empty()) {
    out += "<section id=\"texts\">\n<h2>Generated texts</h2>\n";
    for (size_t c = 0; c < r.generated.size(); ++c) {
      const ConceptTexts& ct = r.generated[c];
      out += fmt::format("<details id=\"texts-{}\"><summary>{} <span class=\"muted\">({} text{})</span></summary>\n"
                         "<ol class=\"texts\">\n",
                         c, esc(ct.concept_name), ct.texts.size(), ct.texts.size() == 1 ? "" : "s");
      for (const auto& t : ct.texts) {
        out += fmt::format("<li value=\"{}\"><div class=\"gen\"><b>{}</b>{}</div>", t.prompt_index, esc(t.prompt),
                           esc(t.continuation));
        if (!t.note.empty()) out += "<div class=\"note\">" + esc(t.note) + "</div>";
        out += "</li>\n";
      }
      out += "</ol></details>\n";
    }
    out += "</section>\n";
  }

  // Neuron pages, grouped by concept in order of first appearance.
  if (!r.neuron_pages.empty()) {
    std::vector<std::string> concepts;
    for (const auto& p : r.neuron_pages)
      if (std::find(concepts.begin(), concepts.end(), p.concept_name) == concepts.end())
        concepts.push_back(p.concept_name);
    out += "<section id=\"neurons\">\n<h2>Neuron pages</h2>\n";
    out += "<p class=\"muted\">The texts each top neuron fires on most; tokens coloured by its activation "
           "(orange/red positive, blue negative; hover for the value).</p>\n";
    if (concepts.size() > 1) {
      out += "<div class=\"toc\">";
      for (size_t c = 0; c < concepts.size(); ++c)
        out += fmt::format("<a href=\"#neurons-{}\">{}</a>", c, esc(concepts[c]));
      out += "</div>\n";
    }
    for (size_t c = 0; c < concepts.size(); ++c) {
      out += fmt::format("<h3 id=\"neurons-{}\">{}</h3>\n", c, esc(concepts[c]));
      for (const auto& p : r.neuron_pages)
        if (p.concept_name == concepts[c]) out += neuron_page_html(p);
    }
    out += "</section>\n";
  }

  // Steering.
  if (!r.steering.empty()) {
    out += "<section id=\"steering\">\n<h2>Steering</h2>\n" + paragraphs(r.steering_note, "muted");
    for (size_t i = 0; i < r.steering.size(); ++i) {
      const SteeringView& v = r.steering[i];
      out += fmt::format("<div class=\"steer-case\" id=\"steering-{}\">\n", i);
      out += "<h3>" + esc(v.title.empty() ? fmt::format("Case {}", i + 1) : v.title) + "</h3>\n<table class=\"kv\">\n";
      if (!v.spec.empty()) out += "<tr><th>Steering</th><td><code>" + esc(v.spec) + "</code></td></tr>\n";
      out += "<tr><th>Prompt</th><td><b>" + esc(v.prompt) + "</b></td></tr>\n";
      out += "<tr><th>First divergence</th><td>" +
             (v.first_divergence_token < 0 ? std::string("none: the texts are identical")
                                           : fmt::format("generated token {}", v.first_divergence_token)) +
             "</td></tr>\n";
      for (const auto& [k, val] : v.measures) out += "<tr><th>" + esc(k) + "</th><td>" + esc(val) + "</td></tr>\n";
      out += "</table>\n<div class=\"steer-grid\">\n";
      out += "<div><h4>Unsteered</h4><div class=\"tokens\"><span class=\"prompt\">" + esc(v.prompt) + "</span>" +
             steer_tokens_html(v.unsteered_tokens, v.first_divergence_token) + "</div></div>\n";
      out += "<div class=\"steered\"><h4>Steered</h4><div class=\"tokens\"><span class=\"prompt\">" + esc(v.prompt) +
             "</span>" + steer_tokens_html(v.steered_tokens, v.first_divergence_token) + "</div></div>\n";
      out += "</div>\n";
      if (!v.control_summary.empty()) out += "<p><b>Control:</b> " + esc(v.control_summary) + "</p>\n";
      out += "</div>\n";
    }
    out += "</section>\n";
  }

  out += "</main>\n<footer><div class=\"wrap\">" +
         (r.footer.empty() ? std::string("Generated by neurontrace.") : esc(r.footer)) + "</div></footer>\n";
  out += "</body>\n</html>\n";
  return out;
}

void write_study_report(const std::string& path, const StudyReport& r) { write_file_atomic(path, study_report_html(r)); }

}  // namespace nt
