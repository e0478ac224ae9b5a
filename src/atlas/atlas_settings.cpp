#include "atlas/atlas_settings.h"

#include "sae/sae_identity.h"
#include "trace/trace_site.h"
#include "util/error.h"
#include "util/message_text.h"
#include "util/option_error.h"

namespace nt {

nlohmann::json AtlasSettings::to_json() const {
  std::vector<std::string> names;
  for (HookSite s : sites) names.push_back(site_name(s));
  return {{"sites", names},           {"saes", saes},           {"sae_ids", sae_ids},
          {"context", context},     {"top_k", top_k},
          {"samples", samples},       {"threshold", threshold}, {"max_tokens", max_tokens},
          {"model", model},           {"corpus", corpus},       {"shard", {shard_index, shard_count}}};
}

AtlasSettings AtlasSettings::from_json(const nlohmann::json& j) {
  try {
    AtlasSettings s;
    s.sites.clear();
    for (const auto& name : j.at("sites")) s.sites.push_back(parse_layer_site(name.get<std::string>(), "atlas site"));
    s.saes = j.value("saes", std::vector<std::string>{});
    s.sae_ids = j.value("sae_ids", nlohmann::json::array());
    if (!s.sae_ids.is_array() || s.sae_ids.size() != s.saes.size()) throw Error("atlas settings: \"sae_ids\" does not match \"saes\"");
    s.context = j.at("context").get<int>();
    s.top_k = j.at("top_k").get<int>();
    s.samples = j.at("samples").get<int>();
    s.threshold = j.at("threshold").get<double>();
    s.max_tokens = j.at("max_tokens").get<int64_t>();
    s.model = j.at("model");
    s.corpus = j.at("corpus");
    s.shard_index = j.at("shard").at(0).get<int>();
    s.shard_count = j.at("shard").at(1).get<int>();
    s.check();
    return s;
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("atlas settings: bad layout (") + e.what() + ")");
  } catch (const OptionError& e) {
    throw Error("atlas settings: " + e.option + ": " + e.problem);
  }
}

void AtlasSettings::check() const {
  if (sites.empty() && saes.empty()) throw OptionError("atlas.sites", "needs at least one site or SAE");
  if (context < 2 || context > 1 << 20) throw OptionError("atlas.context", "must be between 2 and 1048576");
  if (top_k < 1 || top_k > 10000) throw OptionError("atlas.top_k", "must be between 1 and 10000");
  if (samples < 0 || samples > 10000) throw OptionError("atlas.samples", "must be between 0 and 10000");
  if (max_tokens < 0) throw OptionError("atlas.max_tokens", "must not be negative");
  if (shard_count < 1 || shard_index < 0 || shard_index >= shard_count)
    throw OptionError("atlas.shard", "must be I/N with 0 <= I < N");
}

std::string AtlasSettings::difference(const AtlasSettings& o) const {
  if (model.value("fingerprint", "") != o.model.value("fingerprint", "")) return "model";
  if (corpus != o.corpus) return "corpus";
  if (sites != o.sites) return "sites";
  if (sae_ids.size() != o.sae_ids.size()) return "SAEs";
  for (size_t i = 0; i < sae_ids.size(); ++i)
    if (sae_ids[i].value("sha256", "") != o.sae_ids[i].value("sha256", "")) return "SAEs";
  if (context != o.context || top_k != o.top_k || samples != o.samples || threshold != o.threshold ||
      max_tokens != o.max_tokens)
    return "settings";
  if (shard_count != o.shard_count) return "shard count";
  return "";
}

NeuronLayout atlas_layout(const AtlasSettings& settings, const ModelConfig& config) {
  std::vector<TraceSite> sites(settings.sites.begin(), settings.sites.end());
  const auto saes = load_saes(settings.saes, config);
  for (size_t i = 0; i < saes.size(); ++i) {
    if (i < settings.sae_ids.size() && sae_identity(*saes[i]).value("sha256", "") != settings.sae_ids[i].value("sha256", ""))
      throw Error("atlas: SAE " + quote_for_message(settings.saes[i], 300) + " is not the SAE the atlas was scanned with (its files changed)");
    sites.emplace_back(saes[i], saes[i]->hook_point(config), SaeOutput::Latents);
  }
  return NeuronLayout(sites, config);
}

}  // namespace nt
