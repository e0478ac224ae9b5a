#pragma once
// The mergeable state of an atlas scan: per unit (a NeuronLayout flat index) its moments, extremes,
// density counts, fixed-edge histogram (histogram_bins.h), top contexts and hash-chosen samples
// (context_record.h), plus how many tokens and documents it covers. Its size depends on the units
// and settings, never on the corpus. merge() combines the states of disjoint document sets into
// the state of their union: counts add, moments merge pairwise, the bounded record lists keep the
// first entries of their total orders, so the records and counts are identical whatever the order
// or grouping of the merges, and the moments agree to rounding.
#include <cstdint>
#include <string>
#include <vector>

#include "atlas/atlas_settings.h"
#include "atlas/context_record.h"
#include "atlas/moments.h"
#include "atlas/unit_statistics.h"
#include "trace/neuron_layout.h"

namespace nt {

struct AtlasState {
  AtlasSettings settings;
  NeuronLayout layout;
  int64_t tokens = 0;                // counted tokens (every unit sees each of them)
  int64_t documents = 0;             // documents scanned
  std::vector<int> shards;           // shard indices merged into this state (sorted)
  std::vector<Moments> moments;      // [units]
  std::vector<float> min, max;       // [units]
  std::vector<int64_t> positive;     // [units] tokens > 0
  std::vector<int64_t> above;        // [units] tokens > settings.threshold
  std::vector<int64_t> histogram;    // [units * kHistogramBins]
  std::vector<std::vector<ContextRecord>> top;      // [units], at most top_k, top_before order
  std::vector<std::vector<ContextRecord>> samples;  // [units], at most samples, sample_before order

  AtlasState(AtlasSettings settings, NeuronLayout layout);

  // Throws nt::Error "parts differ in <field>" when `other` is not a disjoint part of the same
  // scan (settings differ, or a shard index is in both).
  void merge(const AtlasState& other);
  // A unit's statistics (count = tokens), and setting them (all but the count: `tokens` is the
  // state's, the same for every unit).
  UnitStatistics statistics(size_t unit) const;
  void set_statistics(size_t unit, const UnitStatistics& s);
  // Adds another part's records of `unit` to its bounded lists.
  void merge_records(size_t unit, const std::vector<ContextRecord>& top, const std::vector<ContextRecord>& samples);
  // Variance (population), skewness and excess kurtosis of a unit (0 when undefined).
  double density(size_t unit) const;  // share of the scanned tokens above zero
  double variance(size_t unit) const;
  double skewness(size_t unit) const;
  double kurtosis(size_t unit) const;
};

// The checks of AtlasState::merge on parts given by their settings and shards only: throws nt::Error
// "parts differ in <field>" or "shard I/N is given twice".
void check_disjoint_parts(const AtlasSettings& a, const std::vector<int>& a_shards, const AtlasSettings& b,
                          const std::vector<int>& b_shards);

// The state as safetensors (layout in README "Atlas"), written atomically; `extra` goes into the
// metadata beside the settings (a checkpoint's resume point). load_atlas_state refuses a file that
// is not an atlas state of a layout it knows, naming the file. The model config rebuilds the
// NeuronLayout.
void save_atlas_state(const std::string& path, const AtlasState& state, const nlohmann::json& extra = {});
struct LoadedAtlasState {
  AtlasState state;
  nlohmann::json extra;
};
LoadedAtlasState load_atlas_state(const std::string& path, const ModelConfig& config);
// The settings of a saved state, without reading its arrays (for checks before loading a model).
AtlasSettings read_atlas_settings(const std::string& path);

}  // namespace nt
