#pragma once
// From recorded statistics to the notes' tables: normalize each sample's per-neuron statistic
// against the baseline, take the top K neurons of each sample (per site), count in how many
// samples each neuron appears, and add selectivity measures for the neurons reported.
#include <optional>
#include <string>
#include <vector>

#include "trace/recorder.h"

namespace nt {

enum class Normalization { None, Subtract, ZScore };
enum class RankBy { Mean, MeanAbs, Max };
Normalization parse_normalization(const std::string& s);  // none | subtract | zscore
RankBy parse_rank_by(const std::string& s);               // mean | mean-abs | max
std::string normalization_name(Normalization n);
std::string rank_by_name(RankBy r);

struct AnalysisOptions {
  Normalization normalization = Normalization::Subtract;
  RankBy rank_by = RankBy::Mean;
  int top_k = 10;          // neurons taken from each sample
  int table_rows = 10;     // rows of the consistency table
  // zscore: baseline standard deviations below the floor are raised to it. 0 (default): a tenth of
  // the median baseline standard deviation of the neuron's site, so neurons that hardly move on
  // the baseline (a GELU neuron resting near its minimum) cannot dominate by a tiny denominator.
  double std_floor = 0.0;
};

// Per-neuron baseline figures, from the baseline samples of one position setting.
struct BaselineStats {
  int n_samples = 0;               // baseline samples with at least one recorded token
  std::vector<double> mean;        // mean over samples of the ranked statistic
  std::vector<double> std_samples; // its standard deviation over samples (n-1)
  std::vector<double> std_tokens;  // standard deviation of the activation over all baseline tokens
  std::vector<double> p95;         // 95th percentile over samples of the ranked statistic
  std::vector<double> density;     // fraction of all baseline tokens with the neuron active (> 0)
  bool from_atlas = false;         // mean and std_tokens from an atlas's tokens (analysis/atlas_baseline.h)
};

struct RankedNeuron {
  NeuronId neuron;
  float score = 0.0f;  // normalized score in that sample
};

struct SampleTop {
  int seq = 0;
  int64_t n_tokens = 0;
  std::vector<RankedNeuron> top;  // best first
};

struct ConsistencyRow {
  int rank = 0;
  NeuronId neuron;
  int occurrences = 0;
  double percent = 0.0;
  double mean_score = 0.0;      // mean normalized score over the concept's samples
  double concept_mean = 0.0;    // mean over concept samples of the raw ranked statistic
  double density = 0.0;         // fraction of the concept's recorded tokens with the neuron active (> 0)
  // Against the baseline samples; empty when there are none (nothing was measured).
  std::optional<double> baseline_mean;   // mean over baseline samples of the raw ranked statistic
  std::optional<double> cohens_d;        // (concept - baseline) / pooled sd over samples
  std::optional<double> frac_above_p95;  // share of concept samples above the baseline's 95th percentile
  std::optional<double> baseline_density;  // fraction of the baseline's recorded tokens with it active
  // With --atlas: the share of the neuron's atlas top contexts on the concept (analysis/atlas_share.h).
  std::optional<double> atlas_share;
};

struct SiteConsistency {
  TraceSite site;
  int max_occurrences = 0;  // samples with at least one recorded token
  std::vector<ConsistencyRow> rows;
  std::vector<SampleTop> samples;
};

struct ConceptAnalysis {
  std::string concept_name;
  Positions positions;
  std::vector<SiteConsistency> sites;
  std::vector<std::string> warnings;
  bool no_tokens = false;  // nothing was recorded for this concept
  std::optional<double> atlas_base_rate;  // with --atlas: the concept's share over random corpus tokens
};

// Baseline from the sequences `seqs`, all of recorder group `group` (empty `seqs`: no baseline).
BaselineStats compute_baseline(const Recorder& rec, size_t setting, int group, const std::vector<int>& seqs,
                               RankBy rank_by);

// The options' own rules, checked once for every caller (a command checks before it generates):
// K and the table rows positive and K no larger than any traced site, the floor >= 0, and a
// baseline with samples when a normalization needs one. Throws nt::OptionError.
void check_analysis_options(const AnalysisOptions& options, const NeuronLayout& layout, bool has_baseline);

// Throws nt::OptionError as check_analysis_options does (a baseline without samples counts as none),
// except that a concept that recorded no tokens (e.g. generated positions with max_new_tokens 0)
// needs no baseline: it gets the empty result with no_tokens set.
ConceptAnalysis analyze_concept(const Recorder& rec, size_t setting, const std::string& name,
                                const std::vector<int>& seqs, const BaselineStats& baseline,
                                const AnalysisOptions& options);

// The ranked statistic of one sample for neuron i.
float sample_stat(const SampleSummary& s, size_t i, RankBy rank_by);

}  // namespace nt
