#pragma once
// The neurons a trace covers: one or more sites (hook_resid_post, mlp.hook_post, ...), every layer
// of each. A neuron has a flat index into per-neuron arrays: sites in order, then layer, then index.
#include <string>
#include <vector>

#include "hooks/hook_point.h"
#include "io/model_config.h"

namespace nt {

struct NeuronId {
  int site = 0;  // index into NeuronLayout::sites
  int layer = 0;
  int index = 0;
  bool operator==(const NeuronId&) const = default;
};

struct NeuronLayout {
  std::vector<HookSite> sites;
  int n_layer = 0;
  std::vector<int> widths;   // per site
  std::vector<size_t> offsets;  // per site: flat index of (layer 0, neuron 0)
  size_t total = 0;

  NeuronLayout() = default;
  // Throws nt::Error for a site that is not per-layer, that the model does not fire, or that is
  // listed twice.
  NeuronLayout(const std::vector<HookSite>& sites, const ModelConfig& config);
  size_t flat(const NeuronId& n) const {
    return offsets[static_cast<size_t>(n.site)] + static_cast<size_t>(n.layer) * widths[static_cast<size_t>(n.site)] +
           static_cast<size_t>(n.index);
  }
  NeuronId id(size_t flat) const;
  size_t site_size(int site) const { return static_cast<size_t>(n_layer) * widths[static_cast<size_t>(site)]; }
};

// "L11N447"
std::string neuron_label(int layer, int index);

}  // namespace nt
