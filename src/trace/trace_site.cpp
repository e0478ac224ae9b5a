#include "trace/trace_site.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <optional>

#include "sae/sae.h"
#include "sae/sae_open.h"
#include "trace/neuron_layout.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

constexpr std::array<std::pair<SaeOutput, const char*>, 3> kSaeOutputs = {{
    {SaeOutput::Latents, ".hook_sae_acts_post"},
    {SaeOutput::Recons, ".hook_sae_recons"},
    {SaeOutput::Error, ".hook_sae_error"},
}};

const char* output_suffix(SaeOutput o) {
  for (const auto& [out, suffix] : kSaeOutputs)
    if (out == o) return suffix;
  return "";
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// "<hook>.hook_sae_*" against the loaded SAEs; nullopt when the name has no SAE suffix.
std::optional<TraceSite> sae_site(const std::string& name, const std::vector<TraceSite>& latents) {
  for (const auto& [out, suffix] : kSaeOutputs) {
    if (!ends_with(name, suffix)) continue;
    const std::string hook = name.substr(0, name.size() - std::string(suffix).size());
    for (const TraceSite& s : latents)
      if (hook_name(s.point()) == hook) return TraceSite(s.sae, s.point(), out);
    throw Error("trace site " + quote_for_message(name) + ": no SAE given (--sae) reads " + quote_for_message(hook));
  }
  return std::nullopt;
}

}  // namespace

std::string TraceSite::name() const {
  if (!sae) return site_name(hook);
  return hook_name(point()) + output_suffix(output);
}

std::string unit_label(const TraceSite& site, int layer, int index) {
  return site.is_features() ? fmt::format("F{}", index) : neuron_label(layer, index);
}

std::vector<TraceSite> resolve_trace_sites(const std::vector<std::string>& names,
                                           const std::vector<std::shared_ptr<const Sae>>& saes,
                                           const ModelConfig& config) {
  std::vector<TraceSite> latents;
  for (const auto& sae : saes) latents.emplace_back(sae, sae->hook_point(config), SaeOutput::Latents);
  std::vector<TraceSite> out;
  for (const auto& name : names) {
    if (auto s = sae_site(name, latents)) out.push_back(*s);
    else out.emplace_back(parse_layer_site(name, "trace site"));
  }
  for (const TraceSite& l : latents)
    if (std::find(out.begin(), out.end(), l) == out.end()) out.push_back(l);
  return out;
}

size_t sae_site_values(const TraceSite& site, const float* x, int rows, std::vector<float>& out) {
  SaeEncoding enc;
  site.sae->encode(x, rows, enc);
  if (site.output == SaeOutput::Latents) {
    out = std::move(enc.acts);
    return static_cast<size_t>(site.sae->d_sae());
  }
  const size_t d_in = static_cast<size_t>(site.sae->d_in());
  out.resize(static_cast<size_t>(rows) * d_in);
  site.sae->decode(enc.acts.data(), rows, enc.norm_coeff.data(), out.data());
  if (site.output == SaeOutput::Error)
    for (size_t i = 0; i < out.size(); ++i) out[i] = x[i] - out[i];
  return d_in;
}

std::vector<std::shared_ptr<const Sae>> load_saes(const std::vector<std::string>& specs, const ModelConfig& model) {
  std::vector<std::shared_ptr<const Sae>> out;
  for (const auto& spec : specs) out.push_back(open_sae(spec, {}, model));
  return out;
}

}  // namespace nt
