#include "trace/neuron_layout.h"

#include <fmt/format.h>

namespace nt {

NeuronLayout::NeuronLayout(const std::vector<HookSite>& s, const ModelConfig& config)
    : sites(s), n_layer(config.n_layer) {
  for (HookSite site : sites) {
    offsets.push_back(total);
    widths.push_back(site_width(site, config));
    total += static_cast<size_t>(n_layer) * widths.back();
  }
}

NeuronId NeuronLayout::id(size_t f) const {
  for (size_t s = sites.size(); s-- > 0;) {
    if (f >= offsets[s]) {
      const size_t rel = f - offsets[s];
      return {static_cast<int>(s), static_cast<int>(rel / widths[s]), static_cast<int>(rel % widths[s])};
    }
  }
  return {};
}

int NeuronLayout::site_index(HookSite s) const {
  for (size_t i = 0; i < sites.size(); ++i)
    if (sites[i] == s) return static_cast<int>(i);
  return -1;
}

std::string neuron_label(int layer, int index) {
  return fmt::format("L{}N{}", layer, index);
}

}  // namespace nt
