#include "analysis/consistency.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "util/error.h"
#include "util/message_text.h"
#include "util/option_error.h"
#include "util/quantile.h"

namespace nt {

Normalization parse_normalization(const std::string& s) {
  if (s == "none") return Normalization::None;
  if (s == "subtract") return Normalization::Subtract;
  if (s == "zscore") return Normalization::ZScore;
  throw Error("unknown normalization " + quote_for_message(s) + " (valid: none, subtract, zscore)");
}

RankBy parse_rank_by(const std::string& s) {
  if (s == "mean") return RankBy::Mean;
  if (s == "mean-abs" || s == "mean_abs") return RankBy::MeanAbs;
  if (s == "max") return RankBy::Max;
  throw Error("unknown ranking " + quote_for_message(s) + " (valid: mean, mean-abs, max)");
}

std::string normalization_name(Normalization n) {
  switch (n) {
    case Normalization::None: return "none";
    case Normalization::Subtract: return "subtract";
    case Normalization::ZScore: return "zscore";
  }
  return "?";
}

std::string rank_by_name(RankBy r) {
  switch (r) {
    case RankBy::Mean: return "mean";
    case RankBy::MeanAbs: return "mean-abs";
    case RankBy::Max: return "max";
  }
  return "?";
}

float sample_stat(const SampleSummary& s, size_t i, RankBy rank_by) {
  switch (rank_by) {
    case RankBy::Mean: return s.mean[i];
    case RankBy::MeanAbs: return s.mean_abs[i];
    case RankBy::Max: return s.max[i];
  }
  return 0.0f;
}

BaselineStats compute_baseline(const Recorder& rec, size_t setting, int group, const std::vector<int>& seqs,
                               RankBy rank_by) {
  const size_t n = rec.layout().total;
  BaselineStats b;
  std::vector<SampleSummary> used;
  for (int s : seqs)
    if (rec.n_tokens(setting, s) > 0) used.push_back(rec.sample(setting, s));
  b.n_samples = static_cast<int>(used.size());
  b.mean.assign(n, 0.0);
  b.std_samples.assign(n, 0.0);
  b.std_tokens.assign(n, 0.0);
  b.p95.assign(n, 0.0);
  b.density.assign(n, 0.0);
  if (used.empty()) return b;
  // Token-level spread over all baseline tokens, merged by the recorder from the group's sequences.
  const TokenStats& tokens = rec.group(setting, group);
  std::vector<double> values(used.size());
  for (size_t i = 0; i < n; ++i) {
    double sum = 0.0;
    for (size_t k = 0; k < used.size(); ++k) sum += values[k] = sample_stat(used[k], i, rank_by);
    const double m = sum / static_cast<double>(used.size());
    double ss = 0.0;
    for (double v : values) ss += (v - m) * (v - m);
    b.mean[i] = m;
    b.std_samples[i] = used.size() > 1 ? std::sqrt(ss / static_cast<double>(used.size() - 1)) : 0.0;
    b.p95[i] = quantile(values, 0.95);
    b.std_tokens[i] = tokens.std(i);
    b.density[i] = tokens.density(i);
  }
  return b;
}

namespace {

// zscore: the smallest baseline standard deviation used per site (see AnalysisOptions::std_floor).
std::vector<double> zscore_floors(const NeuronLayout& layout, const BaselineStats& baseline, double std_floor) {
  std::vector<double> floors(layout.sites.size(), std_floor);
  if (std_floor > 0.0) return floors;
  for (size_t s = 0; s < layout.sites.size(); ++s) {
    const auto first = baseline.std_tokens.begin() + static_cast<long>(layout.offsets[s]);
    const std::vector<double> site_std(first, first + static_cast<long>(layout.site_size(static_cast<int>(s))));
    floors[s] = std::max(0.1 * quantile(site_std, 0.5), 1e-6);
  }
  return floors;
}

// The normalized score of raw statistic v of flat neuron i; `floor` is its site's zscore floor.
double normalized_score(double v, size_t i, const BaselineStats& baseline, Normalization n, double floor) {
  switch (n) {
    case Normalization::None: return v;
    case Normalization::Subtract: return v - baseline.mean[i];
    case Normalization::ZScore: return (v - baseline.mean[i]) / std::max(baseline.std_tokens[i], floor);
  }
  return v;
}

// How one site's neurons fared over the concept's samples.
struct SiteTally {
  std::vector<int> occurrences;   // per neuron of the site: samples with it in the top K
  std::vector<double> score_sum;  // per neuron: sum of normalized scores over samples
  std::vector<SampleTop> samples;
};

SiteTally tally_site(const Recorder& rec, size_t setting, size_t site, const std::vector<int>& used,
                     const BaselineStats& baseline, const AnalysisOptions& opt, double floor) {
  const NeuronLayout& layout = rec.layout();
  const size_t begin = layout.offsets[site], count = layout.site_size(static_cast<int>(site));
  SiteTally t{std::vector<int>(count, 0), std::vector<double>(count, 0.0), {}};
  std::vector<double> scores(count);
  std::vector<size_t> order(count);
  for (int seq : used) {
    const SampleSummary smp = rec.sample(setting, seq);
    for (size_t i = 0; i < count; ++i) {
      scores[i] = normalized_score(sample_stat(smp, begin + i, opt.rank_by), begin + i, baseline, opt.normalization, floor);
      t.score_sum[i] += scores[i];
    }
    std::iota(order.begin(), order.end(), size_t{0});
    std::partial_sort(order.begin(), order.begin() + opt.top_k, order.end(), [&](size_t a, size_t b) {
      return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
    });
    SampleTop top{seq, smp.n_tokens, {}};
    for (int k = 0; k < opt.top_k; ++k) {
      const size_t i = order[static_cast<size_t>(k)];
      ++t.occurrences[i];
      top.top.push_back({layout.id(begin + i), static_cast<float>(scores[i])});
    }
    t.samples.push_back(std::move(top));
  }
  return t;
}

// Consistency order: occurrences, then mean normalized score, then layer, then neuron (= site index).
std::vector<size_t> most_consistent(const SiteTally& t, int rows) {
  std::vector<size_t> cand;
  for (size_t i = 0; i < t.occurrences.size(); ++i)
    if (t.occurrences[i] > 0) cand.push_back(i);
  std::sort(cand.begin(), cand.end(), [&](size_t a, size_t b) {
    if (t.occurrences[a] != t.occurrences[b]) return t.occurrences[a] > t.occurrences[b];
    if (t.score_sum[a] != t.score_sum[b]) return t.score_sum[a] > t.score_sum[b];
    return a < b;
  });
  if (cand.size() > static_cast<size_t>(rows)) cand.resize(static_cast<size_t>(rows));
  return cand;
}

// The concept's raw statistic of flat neuron `flat` over samples, and its comparison with the
// baseline when there is one.
void add_selectivity(ConsistencyRow& row, const Recorder& rec, size_t setting, const std::vector<int>& used,
                     SampleStat stat, size_t flat, const BaselineStats& baseline) {
  std::vector<double> values;
  for (int seq : used) values.push_back(rec.sample_value(setting, seq, stat, flat));
  const double nc = static_cast<double>(values.size());
  double sum = 0.0;
  for (double v : values) sum += v;
  row.concept_mean = sum / nc;
  if (baseline.from_atlas) {  // the corpus's token mean and density; no samples to compare with
    row.baseline_mean = baseline.mean[flat];
    row.baseline_density = baseline.density[flat];
  }
  if (baseline.n_samples == 0) return;
  double ss = 0.0;
  int above = 0;
  for (double v : values) {
    ss += (v - row.concept_mean) * (v - row.concept_mean);
    if (v > baseline.p95[flat]) ++above;
  }
  const double nb = baseline.n_samples;
  const double sc2 = nc > 1 ? ss / (nc - 1) : 0.0;
  const double sb2 = baseline.std_samples[flat] * baseline.std_samples[flat];
  const double dof = nc + nb - 2.0;
  const double pooled = std::max(dof > 0 ? std::sqrt(((nc - 1) * sc2 + (nb - 1) * sb2) / dof) : 0.0, 1e-6);
  row.baseline_mean = baseline.mean[flat];
  row.baseline_density = baseline.density[flat];
  row.cohens_d = (row.concept_mean - baseline.mean[flat]) / pooled;
  row.frac_above_p95 = above / nc;
}

}  // namespace

void check_analysis_options(const AnalysisOptions& opt, const NeuronLayout& layout, bool has_baseline) {
  if (opt.top_k <= 0) throw OptionError("trace.per_sample", "must be positive (got " + std::to_string(opt.top_k) + ")");
  if (opt.table_rows <= 0) throw OptionError("trace.rows", "must be positive (got " + std::to_string(opt.table_rows) + ")");
  if (!(opt.std_floor >= 0.0)) throw OptionError("trace.std_floor", "must be >= 0");
  for (size_t s = 0; s < layout.sites.size(); ++s)
    if (static_cast<size_t>(opt.top_k) > layout.site_size(static_cast<int>(s)))
      throw OptionError("trace.per_sample", std::to_string(opt.top_k) + " is larger than the number of neurons at " +
                                                layout.sites[s].name() + " (" +
                                                std::to_string(layout.site_size(static_cast<int>(s))) + ")");
  if (opt.normalization != Normalization::None && !has_baseline)
    throw OptionError("trace.normalize", normalization_name(opt.normalization) +
                                             " needs a baseline with recorded tokens (give baseline prompts or an atlas, or normalize none)");
}

ConceptAnalysis analyze_concept(const Recorder& rec, size_t setting, const std::string& name,
                                const std::vector<int>& seqs, const BaselineStats& baseline,
                                const AnalysisOptions& opt) {
  const NeuronLayout& layout = rec.layout();
  ConceptAnalysis out;
  out.concept_name = name;
  out.positions = rec.options().settings.at(setting);
  std::vector<int> used;
  for (int s : seqs)
    if (rec.n_tokens(setting, s) > 0) used.push_back(s);
  if (used.size() < seqs.size())
    out.warnings.push_back(std::to_string(seqs.size() - used.size()) + " of " + std::to_string(seqs.size()) +
                           " " + quote_for_message(name) + " samples recorded no tokens");
  out.no_tokens = used.empty();
  // Nothing recorded (e.g. generated positions with no new tokens): the result says so, whatever
  // the baseline recorded.
  check_analysis_options(opt, layout, baseline.n_samples > 0 || baseline.from_atlas || out.no_tokens);

  const SampleStat stat = opt.rank_by == RankBy::Mean      ? SampleStat::Mean
                          : opt.rank_by == RankBy::MeanAbs ? SampleStat::MeanAbs
                                                           : SampleStat::Max;
  const std::vector<double> floors = opt.normalization == Normalization::ZScore && !out.no_tokens
                                         ? zscore_floors(layout, baseline, opt.std_floor)
                                         : std::vector<double>(layout.sites.size(), 0.0);
  for (size_t site = 0; site < layout.sites.size(); ++site) {
    SiteTally tally = tally_site(rec, setting, site, used, baseline, opt, floors[site]);
    SiteConsistency sc;
    sc.site = layout.sites[site];
    sc.max_occurrences = static_cast<int>(used.size());
    const std::vector<size_t> best = most_consistent(tally, opt.table_rows);
    for (size_t r = 0; r < best.size(); ++r) {
      const size_t flat = layout.offsets[site] + best[r];
      ConsistencyRow row;
      row.rank = static_cast<int>(r) + 1;
      row.neuron = layout.id(flat);
      row.occurrences = tally.occurrences[best[r]];
      row.percent = 100.0 * row.occurrences / static_cast<double>(used.size());
      row.mean_score = tally.score_sum[best[r]] / static_cast<double>(used.size());
      add_selectivity(row, rec, setting, used, stat, flat, baseline);
      row.density = rec.group(setting, rec.group_of(used[0])).density(flat);
      sc.rows.push_back(row);
    }
    sc.samples = std::move(tally.samples);
    out.sites.push_back(std::move(sc));
  }
  return out;
}

}  // namespace nt
