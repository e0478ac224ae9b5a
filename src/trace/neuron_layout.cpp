#include "trace/neuron_layout.h"

#include <fmt/format.h>

#include <algorithm>

#include "sae/sae.h"
#include "util/error.h"

namespace nt {

NeuronLayout::NeuronLayout(const std::vector<TraceSite>& s, const ModelConfig& config) : sites(s) {
  for (size_t i = 0; i < sites.size(); ++i) {
    const TraceSite& site = sites[i];
    if (!site.is_sae()) {
      if (!site_is_per_layer(site.hook))
        throw Error("'" + site_name(site.hook) + "' is not a per-layer hook point: traced sites cover every layer");
      check_site(config, site.hook);
    }
    if (std::find(sites.begin(), sites.begin() + static_cast<long>(i), site) != sites.begin() + static_cast<long>(i))
      throw Error("site '" + site.name() + "' is listed twice");
  }
  for (const TraceSite& site : sites) {
    offsets.push_back(total);
    first_layer.push_back(site.is_sae() ? site.layer : 0);
    n_layers.push_back(site.is_sae() ? 1 : config.n_layer);
    widths.push_back(site.is_features() ? site.sae->d_sae() : site_width(site.hook, config));
    total += static_cast<size_t>(n_layers.back()) * widths.back();
  }
}

NeuronId NeuronLayout::id(size_t f) const {
  for (size_t s = sites.size(); s-- > 0;) {
    if (f >= offsets[s]) {
      const size_t rel = f - offsets[s];
      return {static_cast<int>(s), first_layer[s] + static_cast<int>(rel / widths[s]), static_cast<int>(rel % widths[s])};
    }
  }
  return {};
}

std::string neuron_label(int layer, int index) {
  return fmt::format("L{}N{}", layer, index);
}

}  // namespace nt
