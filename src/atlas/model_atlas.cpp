#include "atlas/model_atlas.h"

#include "io/model_identity.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

// The atlas's site index of trace site `site`, or throws naming what the atlas has.
size_t atlas_site(const NeuronLayout& atlas, const TraceSite& site, const std::string& file) {
  for (size_t s = 0; s < atlas.sites.size(); ++s)
    if (atlas.sites[s] == site) return s;
  std::string has;
  for (const auto& s : atlas.sites) has += (has.empty() ? "" : ", ") + s.name();
  throw Error(quote_for_message(file, 300) + ": the atlas has no site " + site.name() + " (it has " + has + ")");
}

}  // namespace

ModelAtlas load_model_atlas(const std::string& dir, const Session& session, const NeuronLayout& layout) {
  const std::string file = dir + "/atlas.safetensors";
  const ModelConfig& config = session.model->config();
  const AtlasSettings settings = read_atlas_settings(file);
  if (settings.model.value("fingerprint", "") != model_identity(session.model_dir, config).fingerprint)
    throw Error(quote_for_message(file, 300) + ": the atlas was scanned with another model (" +
                quote_for_message(settings.model.value("path", ""), 300) + ")");
  ModelAtlas a{file, load_atlas_state(file, config).state, std::vector<size_t>(layout.total)};
  for (size_t s = 0; s < layout.sites.size(); ++s) {
    const size_t from = a.state.layout.offsets[atlas_site(a.state.layout, layout.sites[s], a.file)];
    for (size_t u = 0; u < layout.site_size(static_cast<int>(s)); ++u) a.units[layout.offsets[s] + u] = from + u;
  }
  return a;
}

}  // namespace nt
