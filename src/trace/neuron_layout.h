#pragma once
// The units a trace covers: one or more sites (trace_site.h). A hook site covers every layer; an
// SAE's site covers its one hook point. A unit has a flat index into per-unit arrays: sites in
// order, then layer, then index.
#include <string>
#include <vector>

#include "io/model_config.h"
#include "trace/trace_site.h"

namespace nt {

struct NeuronId {
  int site = 0;  // index into NeuronLayout::sites
  int layer = 0;  // the model layer (an SAE site: its hook's layer)
  int index = 0;
  bool operator==(const NeuronId&) const = default;
};

struct NeuronLayout {
  std::vector<TraceSite> sites;
  std::vector<int> first_layer;  // per site: 0, or the SAE's hook layer
  std::vector<int> n_layers;     // per site: the model's layers, or 1 for an SAE site
  std::vector<int> widths;       // per site
  std::vector<size_t> offsets;   // per site: flat index of (first layer, unit 0)
  size_t total = 0;

  NeuronLayout() = default;
  // Throws nt::Error for a hook site that is not per-layer, that the model does not fire, or a
  // site listed twice.
  NeuronLayout(const std::vector<TraceSite>& sites, const ModelConfig& config);
  size_t flat(const NeuronId& n) const {
    const size_t s = static_cast<size_t>(n.site);
    return offsets[s] + static_cast<size_t>(n.layer - first_layer[s]) * widths[s] + static_cast<size_t>(n.index);
  }
  NeuronId id(size_t flat) const;
  size_t site_size(int site) const {
    return static_cast<size_t>(n_layers[static_cast<size_t>(site)]) * widths[static_cast<size_t>(site)];
  }
  std::string label(const NeuronId& n) const { return unit_label(sites[static_cast<size_t>(n.site)], n.layer, n.index); }
};

// "L11N447"
std::string neuron_label(int layer, int index);

}  // namespace nt
