#pragma once
// What an atlas scan was asked to do. Parts of a sharded scan merge only when everything here but
// the shard index is equal (same_scan), so a part made with another model, corpus, site list or
// statistic setting is refused.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "hooks/hook_point.h"
#include "trace/neuron_layout.h"

namespace nt {

struct AtlasSettings {
  std::vector<HookSite> sites{HookSite::MlpPost};
  // SAEs whose latents are units too (after the hook sites), as --sae named them (paths or Hub
  // ids) and as identified when the scan opened them (sae/sae_identity.h: source and content hash).
  std::vector<std::string> saes;
  nlohmann::json sae_ids = nlohmann::json::array();
  int context = 128;              // tokens per window, BOS included
  int top_k = 20;                 // top contexts kept per unit
  int samples = 20;               // hash-chosen sample records per unit
  double threshold = 1.0;         // density: share of tokens above this (besides above 0)
  int64_t max_tokens = 0;         // counted tokens of the whole corpus, in order (0: all)
  nlohmann::json model;           // ModelIdentity::to_json()
  nlohmann::json corpus;          // corpus_fingerprint()
  int shard_index = 0, shard_count = 1;

  nlohmann::json to_json() const;
  static AtlasSettings from_json(const nlohmann::json& j);  // throws nt::Error on a bad layout
  // Throws nt::OptionError naming "atlas.<field>" for a value out of range.
  void check() const;
  bool owns(int64_t doc) const { return doc % shard_count == shard_index; }
  // Empty when `other` is a part of the same scan; otherwise what differs ("model", "sites", ...).
  std::string difference(const AtlasSettings& other) const;
};

// The atlas's units: its sites (hook sites, every layer, then the latents of each SAE at its hook)
// as a NeuronLayout. Opens the settings' SAEs (load_saes) and refuses, naming the SAE, one whose
// content is not what the scan recorded.
NeuronLayout atlas_layout(const AtlasSettings& settings, const ModelConfig& config);

}  // namespace nt
