#include "report/consistency_table.h"

#include <fmt/format.h>

namespace nt {

namespace {

std::string site_label(HookSite s) { return "blocks.*." + site_name(s); }

// A figure measured against the baseline, formatted by `spec` (its value times `scale`), or
// `missing` when there was no baseline to measure against.
std::string vs_baseline(const std::optional<double>& v, const char* spec, const char* missing = "–",
                        double scale = 1.0) {
  return v ? fmt::format(fmt::runtime(spec), *v * scale) : missing;
}

}  // namespace

std::string consistency_text(const ConceptAnalysis& a) {
  std::string out;
  for (const auto& sc : a.sites) {
    out += fmt::format("# site {}, positions {}\n", site_label(sc.site), positions_name(a.positions));
    out += "====================\n";
    out += fmt::format("Most consistent {} neurons\n", a.concept_name);
    out += "====================\n";
    out += fmt::format("Max possible occurrences: {}\n", sc.max_occurrences);
    if (sc.rows.empty()) {
      out += "(no tokens recorded: nothing to rank)\n\n";
      continue;
    }
    out += "Rank  Layer  Neuron  Occurrences  %\n";
    for (const auto& r : sc.rows)
      out += fmt::format("{:>4}  {:>5}  {:>6}  {:>11}  {:>6.2f}%\n", r.rank, r.neuron.layer, r.neuron.index,
                         r.occurrences, r.percent);
    out += "\nSelectivity\n";
    out += "Rank  Neuron      Score  Concept mean  Baseline mean  Cohen's d  >p95 baseline\n";
    for (const auto& r : sc.rows)
      out += fmt::format("{:>4}  {:<8}  {:>7.3f}  {:>12.4f}  {:>13}  {:>9}  {:>13}\n", r.rank,
                         neuron_label(r.neuron.layer, r.neuron.index), r.mean_score, r.concept_mean,
                         vs_baseline(r.baseline_mean, "{:.4f}"), vs_baseline(r.cohens_d, "{:.2f}"),
                         vs_baseline(r.frac_above_p95, "{:.0f}%", "–", 100.0));
    out += "\n";
  }
  for (const auto& w : a.warnings) out += "warning: " + w + "\n";
  return out;
}

std::string consistency_markdown(const std::vector<ConceptAnalysis>& analyses) {
  std::string out;
  for (const auto& a : analyses) {
    for (const auto& sc : a.sites) {
      out += fmt::format("## Most consistent {} neurons — `{}`, positions `{}`\n\n", a.concept_name,
                         site_label(sc.site), positions_name(a.positions));
      out += fmt::format("Max possible occurrences: {}\n\n", sc.max_occurrences);
      if (sc.rows.empty()) {
        out += "No tokens recorded.\n\n";
        continue;
      }
      out += "| Rank | Layer | Neuron | Occurrences | % | Mean score | Concept mean | Baseline mean | Cohen's d | > baseline p95 |\n";
      out += "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
      for (const auto& r : sc.rows)
        out += fmt::format("| {} | {} | {} | {} | {:.2f}% | {:.4f} | {:.4f} | {} | {} | {} |\n", r.rank,
                           r.neuron.layer, r.neuron.index, r.occurrences, r.percent, r.mean_score, r.concept_mean,
                           vs_baseline(r.baseline_mean, "{:.4f}"), vs_baseline(r.cohens_d, "{:.2f}"),
                           vs_baseline(r.frac_above_p95, "{:.0f}%", "–", 100.0));
      out += "\n";
    }
  }
  return out;
}

std::string consistency_csv(const std::vector<ConceptAnalysis>& analyses) {
  std::string out =
      "concept,positions,site,rank,layer,neuron,occurrences,percent,mean_score,concept_mean,baseline_mean,"
      "cohens_d,frac_above_baseline_p95\n";
  for (const auto& a : analyses)
    for (const auto& sc : a.sites)
      for (const auto& r : sc.rows)
        out += fmt::format("\"{}\",{},{},{},{},{},{},{:.4f},{:.6g},{:.6g},{},{},{}\n", a.concept_name,
                           positions_name(a.positions), site_name(sc.site), r.rank, r.neuron.layer, r.neuron.index,
                           r.occurrences, r.percent, r.mean_score, r.concept_mean,
                           vs_baseline(r.baseline_mean, "{:.6g}", ""), vs_baseline(r.cohens_d, "{:.6g}", ""),
                           vs_baseline(r.frac_above_p95, "{:.4f}", ""));
  return out;
}

}  // namespace nt
