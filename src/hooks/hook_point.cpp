#include "hooks/hook_point.h"

#include <algorithm>
#include <array>
#include <cctype>

#include "util/error.h"

namespace nt {

namespace {

struct SiteName {
  HookSite site;
  const char* name;
  const char* alias;
};
constexpr std::array<SiteName, kHookSiteCount> kSites = {{
    {HookSite::Embed, "hook_embed", "embed"},
    {HookSite::PosEmbed, "hook_pos_embed", "pos_embed"},
    {HookSite::ResidPre, "hook_resid_pre", "resid_pre"},
    {HookSite::AttnOut, "hook_attn_out", "attn_out"},
    {HookSite::ResidMid, "hook_resid_mid", "resid_mid"},
    {HookSite::MlpPre, "mlp.hook_pre", "mlp_pre"},
    {HookSite::MlpPreLinear, "mlp.hook_pre_linear", "mlp_pre_linear"},
    {HookSite::MlpPost, "mlp.hook_post", "mlp_post"},
    {HookSite::MlpOut, "hook_mlp_out", "mlp_out"},
    {HookSite::ResidPost, "hook_resid_post", "resid_post"},
    {HookSite::LnFinal, "ln_final.hook_normalized", "ln_final"},
}};

std::string valid_names() {
  std::string s;
  for (const auto& e : kSites) s += (s.empty() ? "" : ", ") + std::string(e.name);
  return s;
}

}  // namespace

bool site_is_per_layer(HookSite site) {
  return site != HookSite::Embed && site != HookSite::PosEmbed && site != HookSite::LnFinal;
}

std::string site_name(HookSite site) { return kSites[static_cast<size_t>(site)].name; }

std::string hook_name(HookPoint point) {
  if (!site_is_per_layer(point.site)) return site_name(point.site);
  return "blocks." + std::to_string(point.layer) + "." + site_name(point.site);
}

int site_width(HookSite site, const ModelConfig& config) {
  switch (site) {
    case HookSite::MlpPre:
    case HookSite::MlpPreLinear:
    case HookSite::MlpPost:
      return config.d_mlp;
    default:
      return config.d_model;
  }
}

bool model_fires(const ModelConfig& config, HookSite site) {
  const auto sites = model_hook_sites(config);
  return std::find(sites.begin(), sites.end(), site) != sites.end();
}

void check_site(const ModelConfig& config, HookSite site) {
  if (model_fires(config, site)) return;
  std::string valid;
  for (HookSite s : model_hook_sites(config)) valid += (valid.empty() ? "" : ", ") + site_name(s);
  throw Error("model type '" + config.model_type + "' has no hook point '" + site_name(site) + "' (its points: " +
              valid + ")");
}

void check_hook_point(const ModelConfig& config, HookPoint point) {
  check_site(config, point.site);
  if (site_is_per_layer(point.site) != (point.layer >= 0))
    throw Error("hook point " + hook_name(point) + (point.layer >= 0 ? " takes no layer" : " needs a layer"));
  if (point.layer >= config.n_layer)
    throw Error("layer " + std::to_string(point.layer) + " out of range in '" + hook_name(point) + "' (model has " +
                std::to_string(config.n_layer) + " layers)");
}

namespace {

HookSite parse_site(const std::string& name, const std::string& full) {
  for (const auto& e : kSites)
    if (name == e.name || name == e.alias) return e.site;
  throw Error("unknown hook site '" + full + "' (valid: " + valid_names() +
              "; per-layer sites may be written blocks.*.NAME or blocks.L.NAME)");
}

}  // namespace

HookName parse_hook_name(const std::string& name) {
  const std::string prefix = "blocks.";
  if (name.rfind(prefix, 0) != 0) return {parse_site(name, name), -1};
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos) throw Error("malformed hook name '" + name + "' (write blocks.*.NAME or blocks.L.NAME)");
  const std::string layer = name.substr(prefix.size(), dot - prefix.size());
  const HookSite site = parse_site(name.substr(dot + 1), name);
  if (!site_is_per_layer(site))
    throw Error("hook '" + site_name(site) + "' is not a per-layer point: write it without 'blocks.' ('" + name + "')");
  if (layer == "*") return {site, -1};
  if (layer.empty() || layer.size() > 6 ||
      !std::all_of(layer.begin(), layer.end(), [](unsigned char c) { return std::isdigit(c); }))
    throw Error("malformed layer '" + layer + "' in hook name '" + name + "' (a number, or * for every layer)");
  return {site, std::stoi(layer)};
}

HookSite parse_layer_site(const std::string& name, const std::string& what) {
  const HookName h = parse_hook_name(name);
  if (!site_is_per_layer(h.site))
    throw Error(what + " '" + name + "' is not a per-layer hook point (its neurons have no layer)");
  if (h.layer >= 0)
    throw Error(what + " '" + name + "' names one layer; a " + what + " covers every layer (write blocks.*." +
                site_name(h.site) + " or " + site_name(h.site) + ")");
  return h.site;
}

}  // namespace nt
