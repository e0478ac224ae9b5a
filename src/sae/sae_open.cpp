#include "sae/sae_open.h"

#include <filesystem>

#include "io/hf_environment.h"
#include "io/hub_download.h"
#include "io/model_resolver.h"
#include "sae/sae_releases.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace fs = std::filesystem;

namespace {

struct HubSpec {
  std::string repo_id, folder;
};

// "ORG/REPO[/FOLDER...]" with no empty, "." or ".." part; nullopt otherwise.
std::optional<HubSpec> parse_hub_spec(const std::string& spec) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (true) {
    const size_t slash = spec.find('/', start);
    parts.push_back(spec.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  if (parts.size() < 2) return std::nullopt;
  for (const auto& p : parts)
    if (p.empty() || p == "." || p == "..") return std::nullopt;
  HubSpec h{parts[0] + "/" + parts[1], ""};
  for (size_t i = 2; i < parts.size(); ++i) h.folder += (i > 2 ? "/" : "") + parts[i];
  return h;
}

bool has_sae_files(const fs::path& dir) {
  std::error_code ec;
  return (fs::exists(dir / "cfg.json", ec) && fs::exists(dir / "sae_weights.safetensors", ec)) ||
         fs::exists(dir / "params.npz", ec);
}

// The local folder of a Hub SAE: the cached snapshot's, else downloaded (unless offline).
std::string hub_sae_folder(const std::string& spec, const HubSpec& h) {
  const std::string snapshot = hf_cached_snapshot(h.repo_id);
  const fs::path sub = h.folder.empty() ? fs::path() : fs::path(h.folder);
  if (!snapshot.empty() && has_sae_files(fs::path(snapshot) / sub)) return (fs::path(snapshot) / sub).string();
  const std::string where = hf_repo_dir(h.repo_id);
  if (hf_hub_offline())
    throw Error("SAE " + quote_for_message(spec) + " is not a file or folder and not in the Hugging Face cache (looked in " +
                where + "); offline mode is on (HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE), so it is not downloaded");
  const std::string prefix = h.folder.empty() ? "" : h.folder + "/";
  std::string downloaded;
  try {
    downloaded = hub_download_files(h.repo_id, {prefix + "cfg.json", prefix + "sae_weights.safetensors",
                                                prefix + "sparsity.safetensors", prefix + "params.npz"});
  } catch (const Error& e) {
    throw Error("SAE " + quote_for_message(spec) + ": downloading it failed: " + e.what());
  }
  const fs::path dir = fs::path(downloaded) / sub;
  if (!has_sae_files(dir))
    throw Error("repository " + quote_for_message(h.repo_id) + " has no SAE in folder " +
                quote_for_message(h.folder.empty() ? "." : h.folder) +
                " (neither cfg.json with sae_weights.safetensors nor params.npz)");
  return dir.string();
}

// Whether the SAELens folder at `path` says normalize_activations expected_average_only_in.
bool needs_scaling_factor(const std::string& path) {
  const fs::path cfg = fs::path(path) / "cfg.json";
  std::error_code ec;
  if (!fs::exists(cfg, ec)) return false;
  return parse_sae_config(read_file(cfg.string()), cfg.string()).normalization == SaeNormalization::ExpectedAverageOnlyIn;
}

void check_centring(const Sae& sae, const ModelConfig& model) {
  if (!sae.config().center_input) return;
  const HookPoint point = sae.hook_point(model);
  if (site_width(point.site, model) != model.d_model)
    throw Error(sae.source() + ": centred input is for d_model-wide hooks (residual stream, attention and MLP "
                               "outputs), not '" + sae.config().hook_name + "'");
}

}  // namespace

std::shared_ptr<const Sae> open_sae(const std::string& spec, const SaeOpenOptions& options, const ModelConfig& model) {
  if (spec.empty()) throw Error("no SAE given");
  std::error_code ec;
  std::string path = spec;
  SaeReleaseFacts facts;
  std::optional<HubSpec> hub;
  if (!fs::exists(spec, ec)) {
    const bool path_like = spec[0] == '/' || spec[0] == '.' || spec[0] == '~';
    hub = path_like ? std::nullopt : parse_hub_spec(spec);
    if (!hub)
      throw Error(quote_for_message(spec) + ": no such SAE file or folder (nor a Hugging Face id ORG/REPO[/FOLDER])");
    path = hub_sae_folder(spec, *hub);
    facts = sae_release_facts(hub->repo_id, hub->folder);
  }
  SaeLoadOptions load;
  load.encoder_format = options.encoder_format;
  load.norm_scaling_factor = options.norm_scaling_factor;
  if (!load.norm_scaling_factor && facts.norm_scaling_factor && needs_scaling_factor(path))
    load.norm_scaling_factor = facts.norm_scaling_factor;
  if (options.center_input || facts.center_input) load.center_input = true;
  auto sae = Sae::load(path, load);
  if (facts.layer_norm_input && sae->config().normalization != SaeNormalization::LayerNorm)
    throw Error(sae->source() + ": release " + facts.release + " uses layer_norm input normalisation, but its cfg.json says '" +
                sae_normalization_name(sae->config().normalization) + "'");
  sae->hook_point(model);  // refuses an SAE that does not fit the model, naming both
  check_centring(*sae, model);
  return sae;
}

}  // namespace nt
