#include "trace/neuron_layout.h"

#include <fmt/format.h>

#include <algorithm>

#include "util/error.h"

namespace nt {

NeuronLayout::NeuronLayout(const std::vector<HookSite>& s, const ModelConfig& config)
    : sites(s), n_layer(config.n_layer) {
  for (size_t i = 0; i < sites.size(); ++i) {
    const HookSite site = sites[i];
    if (!site_is_per_layer(site))
      throw Error("'" + site_name(site) + "' is not a per-layer hook point: traced sites cover every layer");
    check_site(config, site);
    if (std::find(sites.begin(), sites.begin() + static_cast<long>(i), site) != sites.begin() + static_cast<long>(i))
      throw Error("site '" + site_name(site) + "' is listed twice");
  }
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

std::string neuron_label(int layer, int index) {
  return fmt::format("L{}N{}", layer, index);
}

}  // namespace nt
