#include "report/consistency_table.h"

#include <fmt/format.h>

#include <algorithm>

#include "sae/sae.h"

namespace nt {

namespace {

// "blocks.*.mlp.hook_post", or an SAE's site with the SAE it reads.
std::string site_label(const TraceSite& s) {
  return s.is_sae() ? s.name() + " (SAE " + s.sae->source() + ")" : "blocks.*." + s.name();
}

// "Neuron" or "Feature", for column headers.
std::string unit_column(const TraceSite& s) { return s.is_features() ? "Feature" : "Neuron"; }

// A figure measured against the baseline, formatted by `spec` (its value times `scale`), or
// `missing` when there was no baseline to measure against.
std::string vs_baseline(const std::optional<double>& v, const char* spec, const char* missing = "–",
                        double scale = 1.0) {
  return v ? fmt::format(fmt::runtime(spec), *v * scale) : missing;
}

// What the atlas share column means, with the concept's base rate.
std::string atlas_note(const ConceptAnalysis& a) {
  return fmt::format("Atlas share: of each {}'s atlas top contexts, those with a concept word near the max token "
                     "(base rate over random corpus tokens: {:.1f}%)",
                     a.sites.empty() ? "unit" : a.sites.front().site.unit_noun(), 100.0 * a.atlas_base_rate.value_or(0.0));
}

}  // namespace

std::string consistency_text(const ConceptAnalysis& a) {
  std::string out;
  for (const auto& sc : a.sites) {
    out += fmt::format("# site {}, positions {}\n", site_label(sc.site), positions_name(a.positions));
    out += "====================\n";
    out += fmt::format("Most consistent {} {}s\n", a.concept_name, sc.site.unit_noun());
    out += "====================\n";
    out += fmt::format("Max possible occurrences: {}\n", sc.max_occurrences);
    if (sc.rows.empty()) {
      out += "(no tokens recorded: nothing to rank)\n\n";
      continue;
    }
    const std::string unit = unit_column(sc.site);
    out += fmt::format("Rank  Layer  {}  Occurrences  %\n", unit);
    for (const auto& r : sc.rows)
      out += fmt::format("{:>4}  {:>5}  {:>{}}  {:>11}  {:>6.2f}%\n", r.rank, r.neuron.layer, r.neuron.index,
                         unit.size(), r.occurrences, r.percent);
    const bool atlas = a.atlas_base_rate.has_value();
    out += "\nSelectivity\n";
    out += fmt::format("Rank  {:<8}    Score  Concept mean  Baseline mean  Cohen's d  >p95 baseline  Density{}\n",
                       unit_column(sc.site), atlas ? "  Atlas share" : "");
    for (const auto& r : sc.rows)
      out += fmt::format("{:>4}  {:<8}  {:>7.3f}  {:>12.4f}  {:>13}  {:>9}  {:>13}  {:>6.1f}%{}\n", r.rank,
                         unit_label(sc.site, r.neuron.layer, r.neuron.index), r.mean_score, r.concept_mean,
                         vs_baseline(r.baseline_mean, "{:.4f}"), vs_baseline(r.cohens_d, "{:.2f}"),
                         vs_baseline(r.frac_above_p95, "{:.0f}%", "–", 100.0), 100.0 * r.density,
                         atlas ? vs_baseline(r.atlas_share, "  {:>10.1f}%", "", 100.0) : "");
    if (atlas) out += atlas_note(a) + "\n";
    out += "\n";
  }
  for (const auto& w : a.warnings) out += "warning: " + w + "\n";
  return out;
}

std::string consistency_markdown(const std::vector<ConceptAnalysis>& analyses) {
  std::string out;
  for (const auto& a : analyses) {
    for (const auto& sc : a.sites) {
      out += fmt::format("## Most consistent {} {}s — `{}`, positions `{}`\n\n", a.concept_name,
                         sc.site.unit_noun(), site_label(sc.site), positions_name(a.positions));
      out += fmt::format("Max possible occurrences: {}\n\n", sc.max_occurrences);
      if (sc.rows.empty()) {
        out += "No tokens recorded.\n\n";
        continue;
      }
      const bool atlas = a.atlas_base_rate.has_value();
      out += fmt::format("| Rank | Layer | {} | Occurrences | % | Mean score | Concept mean | Baseline mean | Cohen's d | "
                         "> baseline p95 | Density |{}\n",
                         unit_column(sc.site), atlas ? " Atlas share |" : "");
      out += fmt::format("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|{}\n", atlas ? "---:|" : "");
      for (const auto& r : sc.rows)
        out += fmt::format("| {} | {} | {} | {} | {:.2f}% | {:.4f} | {:.4f} | {} | {} | {} | {:.1f}% |{}\n", r.rank,
                           r.neuron.layer, r.neuron.index, r.occurrences, r.percent, r.mean_score, r.concept_mean,
                           vs_baseline(r.baseline_mean, "{:.4f}"), vs_baseline(r.cohens_d, "{:.2f}"),
                           vs_baseline(r.frac_above_p95, "{:.0f}%", "–", 100.0), 100.0 * r.density,
                           atlas ? vs_baseline(r.atlas_share, " {:.1f}% |", "", 100.0) : "");
      if (atlas) (out += "\n") += atlas_note(a) + "\n";
      out += "\n";
    }
  }
  return out;
}

std::string consistency_csv(const std::vector<ConceptAnalysis>& analyses) {
  // The atlas columns only when a trace or study had an atlas (--atlas).
  const bool atlas = std::any_of(analyses.begin(), analyses.end(),
                                 [](const ConceptAnalysis& a) { return a.atlas_base_rate.has_value(); });
  std::string out =
      "concept,positions,site,rank,layer,neuron,occurrences,percent,mean_score,concept_mean,baseline_mean,"
      "cohens_d,frac_above_baseline_p95,density,baseline_density" +
      std::string(atlas ? ",atlas_share,atlas_base_rate\n" : "\n");
  for (const auto& a : analyses)
    for (const auto& sc : a.sites)
      for (const auto& r : sc.rows) {
        out += fmt::format("\"{}\",{},{},{},{},{},{},{:.4f},{:.6g},{:.6g},{},{},{},{:.6g},{}", a.concept_name,
                           positions_name(a.positions), sc.site.name(), r.rank, r.neuron.layer, r.neuron.index,
                           r.occurrences, r.percent, r.mean_score, r.concept_mean,
                           vs_baseline(r.baseline_mean, "{:.6g}", ""), vs_baseline(r.cohens_d, "{:.6g}", ""),
                           vs_baseline(r.frac_above_p95, "{:.4f}", ""), r.density,
                           vs_baseline(r.baseline_density, "{:.6g}", ""));
        if (atlas)
          out += fmt::format(",{},{}", vs_baseline(r.atlas_share, "{:.6g}", ""), vs_baseline(a.atlas_base_rate, "{:.6g}", ""));
        out += "\n";
      }
  return out;
}

}  // namespace nt
