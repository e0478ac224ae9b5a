// Sae::load: finds the SAE's files, reads them (SAELens folder or Gemma Scope params.npz), checks
// every tensor's shape and values, and builds the Sae.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "io/safetensors.h"
#include "sae/npz.h"
#include "sae/sae.h"
#include "util/error.h"

namespace nt {

namespace fs = std::filesystem;

namespace {

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// Checks a tensor's shape against the config and its values for NaN / infinity.
std::vector<float> checked(std::vector<float> values, const std::vector<int64_t>& shape,
                           const std::vector<int64_t>& expected, const std::string& where, const std::string& name) {
  if (shape != expected)
    throw Error(where + ": tensor '" + name + "' has shape " + shape_string(shape) + ", expected " +
                shape_string(expected) + " (d_in, d_sae)");
  for (size_t i = 0; i < values.size(); ++i)
    if (!std::isfinite(values[i]))
      throw Error(where + ": tensor '" + name + "' has a NaN or infinite value at element " + std::to_string(i));
  return values;
}

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot read");
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Shapes {
  std::vector<int64_t> in, sae, enc, dec;
  explicit Shapes(const SaeConfig& c)
      : in{c.d_in}, sae{c.d_sae}, enc{c.d_in, c.d_sae}, dec{c.d_sae, c.d_in} {}
};

Sae::Weights read_safetensors_weights(const SafetensorsFile& f, const SaeConfig& c) {
  const Shapes s(c);
  auto get = [&](const char* name, const std::vector<int64_t>& expected) {
    const TensorInfo& t = f.get(name);
    return checked(f.read_f32(t), t.shape, expected, f.path(), name);
  };
  Sae::Weights w;
  w.W_enc = get("W_enc", s.enc);
  w.W_dec = get("W_dec", s.dec);
  w.b_dec = get("b_dec", s.in);
  if (c.architecture == SaeArchitecture::Gated) {
    w.b_gate = get("b_gate", s.sae);
    w.b_mag = get("b_mag", s.sae);
    w.r_mag = get("r_mag", s.sae);
  } else {
    w.b_enc = get("b_enc", s.sae);
  }
  if (c.architecture == SaeArchitecture::JumpReLU) w.threshold = get("threshold", s.sae);
  return w;
}

std::shared_ptr<const Sae> load_saelens(const fs::path& dir, const SaeLoadOptions& options) {
  const fs::path cfg_path = dir / "cfg.json";
  SaeConfig c = parse_sae_config(read_text_file(cfg_path), cfg_path.string());
  if (!options.hook_name.empty()) c.hook_name = options.hook_name;
  const fs::path weights_path = dir / "sae_weights.safetensors";
  if (!fs::is_regular_file(weights_path)) throw Error(weights_path.string() + ": missing (the SAE's weights)");
  auto sae = std::make_shared<Sae>(c, dir.string(), read_safetensors_weights(SafetensorsFile(weights_path.string()), c),
                                   options);
  const fs::path sparsity_path = dir / "sparsity.safetensors";
  if (fs::is_regular_file(sparsity_path)) {
    SafetensorsFile f(sparsity_path.string());
    const TensorInfo& t = f.get("sparsity");
    std::vector<float> v = f.read_f32(t);
    if (t.shape != std::vector<int64_t>{c.d_sae})
      throw Error(f.path() + ": tensor 'sparsity' has shape " + shape_string(t.shape) + ", expected [" +
                  std::to_string(c.d_sae) + "] (d_sae)");
    sae->set_log10_density(std::move(v));
  }
  return sae;
}

// Gemma Scope releases name the hook by folder: ".../gemma-scope-2b-pt-res/layer_12/width_16k/...".
std::string gemma_scope_hook(const fs::path& file) {
  static const std::regex layer_re("layer_([0-9]+)");
  std::string layer, kind;
  for (const auto& part : file.parent_path()) {
    const std::string s = part.string();
    std::smatch m;
    if (std::regex_match(s, m, layer_re)) layer = m[1];
    for (const char* suffix : {"-res", "-mlp", "-att", "-transcoders"})
      if (s.find(suffix) != std::string::npos && s.find("gemma-scope") != std::string::npos) kind = suffix;
  }
  if (layer.empty() || (kind != "-res" && kind != "-mlp"))
    throw Error(file.string() + ": cannot tell the hook from the path (expected .../gemma-scope-*-res/layer_L/... "
                "or -mlp); give the hook name");
  return "blocks." + layer + (kind == "-res" ? ".hook_resid_post" : ".hook_mlp_out");
}

std::shared_ptr<const Sae> load_gemma_scope(const fs::path& file, const SaeLoadOptions& options) {
  const std::string where = file.string();
  NpzArrays arrays = read_npz(where);
  std::map<std::string, NpyArray> named;
  for (auto& [key, array] : arrays) {
    const std::string name = key.rfind("w_", 0) == 0 ? "W_" + key.substr(2) : key;
    if (named.count(name)) throw Error(where + ": both '" + key + "' and '" + name + "' present");
    named[name] = std::move(array);
  }
  auto take = [&](const std::string& name) -> NpyArray& {
    auto it = named.find(name);
    if (it == named.end()) throw Error(where + ": missing array '" + name + "'");
    return it->second;
  };
  const NpyArray& enc = take("W_enc");
  if (enc.shape.size() != 2 || enc.shape[0] <= 0 || enc.shape[1] <= 0 || enc.shape[0] > (1 << 30) || enc.shape[1] > (1 << 30))
    throw Error(where + ": array 'W_enc' has shape " + shape_string(enc.shape) + ", expected [d_in, d_sae]");
  SaeConfig c;
  c.d_in = static_cast<int>(enc.shape[0]);
  c.d_sae = static_cast<int>(enc.shape[1]);
  c.architecture = SaeArchitecture::JumpReLU;
  c.apply_b_dec_to_input = false;
  c.hook_name = options.hook_name.empty() ? gemma_scope_hook(file) : options.hook_name;
  const Shapes s(c);
  auto get = [&](const char* name, const std::vector<int64_t>& expected) {
    NpyArray& a = take(name);
    return checked(std::move(a.data), a.shape, expected, where, name);
  };
  Sae::Weights w;
  w.W_enc = get("W_enc", s.enc);
  w.W_dec = get("W_dec", s.dec);
  w.b_enc = get("b_enc", s.sae);
  w.b_dec = get("b_dec", s.in);
  w.threshold = get("threshold", s.sae);
  return std::make_shared<Sae>(c, where, std::move(w), options);
}

}  // namespace

std::shared_ptr<const Sae> Sae::load(const std::string& path, const SaeLoadOptions& options) {
  const fs::path p(path);
  std::error_code ec;
  if (fs::is_directory(p, ec)) {
    if (fs::is_regular_file(p / "cfg.json")) return load_saelens(p, options);
    if (fs::is_regular_file(p / "params.npz")) return load_gemma_scope(p / "params.npz", options);
    throw Error(path + ": no cfg.json (SAELens) or params.npz (Gemma Scope) in this folder");
  }
  if (fs::is_regular_file(p, ec)) {
    if (p.filename() == "cfg.json") return load_saelens(p.parent_path().empty() ? fs::path(".") : p.parent_path(), options);
    if (p.extension() == ".npz") return load_gemma_scope(p, options);
    throw Error(path + ": not an SAE (expected a SAELens folder, its cfg.json, or a params.npz)");
  }
  throw Error(path + ": no such SAE file or folder");
}

}  // namespace nt
