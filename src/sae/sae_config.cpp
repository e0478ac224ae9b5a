#include "sae/sae_config.h"

#include <nlohmann/json.hpp>

#include "util/error.h"

namespace nt {

using nlohmann::json;

namespace {

[[noreturn]] void fail(const std::string& file, const std::string& what) { throw Error(file + ": " + what); }

// A value from the file, quoted and escaped as JSON, so a message stays one line.
std::string json_quoted(const std::string& s) { return json(s).dump(-1, ' ', false, json::error_handler_t::replace); }

const json* field(const json& j, const char* key) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? nullptr : &*it;
}

std::string string_field(const json& j, const char* key, const std::string& fallback, const std::string& file) {
  const json* v = field(j, key);
  if (!v) return fallback;
  if (!v->is_string()) fail(file, std::string("'") + key + "' must be a string");
  return v->get<std::string>();
}

bool bool_field(const json& j, const char* key, bool fallback, const std::string& file) {
  const json* v = field(j, key);
  if (!v) return fallback;
  if (!v->is_boolean()) fail(file, std::string("'") + key + "' must be true or false");
  return v->get<bool>();
}

int positive_int(const json& v, const std::string& what, const std::string& file) {
  if (!v.is_number_integer() || v.get<int64_t>() <= 0 || v.get<int64_t>() > (1 << 30))
    fail(file, what + " must be a positive integer");
  return static_cast<int>(v.get<int64_t>());
}

int required_int(const json& j, const char* key, const std::string& file) {
  const json* v = field(j, key);
  if (!v) fail(file, std::string("missing '") + key + "'");
  return positive_int(*v, std::string("'") + key + "'", file);
}

// SAELens: 6.x when sae_lens_version (top level, else in metadata) is >= 6.0.0.
bool is_v6(const json& j, const std::string& file) {
  const json* v = field(j, "sae_lens_version");
  if (!v) {
    const json* meta = field(j, "metadata");
    if (meta && meta->is_object()) v = field(*meta, "sae_lens_version");
  }
  if (!v) return false;
  if (!v->is_string()) fail(file, "'sae_lens_version' must be a string");
  const std::string s = v->get<std::string>();
  size_t i = 0;
  int major = 0;
  while (i < s.size() && i < 6 && s[i] >= '0' && s[i] <= '9') major = major * 10 + (s[i++] - '0');
  if (i == 0 || (i < s.size() && s[i] != '.')) fail(file, "'sae_lens_version' " + json_quoted(s) + " is not a version");
  return major >= 6;
}

SaeArchitecture parse_architecture(const std::string& name, const std::string& file) {
  if (name == "standard") return SaeArchitecture::Standard;
  if (name == "jumprelu") return SaeArchitecture::JumpReLU;
  if (name == "topk") return SaeArchitecture::TopK;
  if (name == "gated") return SaeArchitecture::Gated;
  fail(file, "SAE architecture " + json_quoted(name) + " is not supported (standard, jumprelu, topk, gated are)");
}

SaeNormalization parse_normalization(const json& j, const std::string& file) {
  const json* v = field(j, "normalize_activations");
  if (!v) return SaeNormalization::None;
  if (v->is_boolean()) return v->get<bool>() ? SaeNormalization::ExpectedAverageOnlyIn : SaeNormalization::None;
  if (!v->is_string()) fail(file, "'normalize_activations' must be a string or a boolean");
  const std::string name = v->get<std::string>();
  if (name == "none") return SaeNormalization::None;
  if (name == "expected_average_only_in") return SaeNormalization::ExpectedAverageOnlyIn;
  if (name == "constant_norm_rescale") return SaeNormalization::ConstantNormRescale;
  if (name == "layer_norm") return SaeNormalization::LayerNorm;
  fail(file, "normalize_activations " + json_quoted(name) +
                 " is not supported (none, expected_average_only_in, constant_norm_rescale, layer_norm are)");
}

// model_from_pretrained_kwargs.center_writing_weights, at the top level (pre-6) or in metadata (6.x).
bool centred_input(const json& j, const std::string& file) {
  const json* meta = field(j, "metadata");
  for (const json* src : {meta, &j}) {
    if (!src || !src->is_object()) continue;
    const json* kwargs = field(*src, "model_from_pretrained_kwargs");
    if (!kwargs) continue;
    if (!kwargs->is_object()) fail(file, "'model_from_pretrained_kwargs' must be an object");
    return bool_field(*kwargs, "center_writing_weights", false, file);
  }
  return false;
}

void refuse_unsupported_shapes(const json& j, const json* meta, const std::string& file) {
  for (const json* src : {&j, meta}) {
    if (!src) continue;
    for (const char* key : {"hook_head_index", "hook_point_head_index"})
      if (field(*src, key)) fail(file, std::string("per-head SAEs ('") + key + "') are not supported");
  }
  const std::string reshape = string_field(j, "reshape_activations", "none", file);
  if (reshape != "none") fail(file, "reshape_activations " + json_quoted(reshape) + " is not supported (none is)");
}

void read_v6(const json& j, SaeConfig& c, const std::string& file) {
  const json* meta = field(j, "metadata");
  if (meta && !meta->is_object()) fail(file, "'metadata' must be an object");
  refuse_unsupported_shapes(j, meta, file);
  if (!field(j, "architecture")) fail(file, "missing 'architecture' (required in a SAELens 6.x cfg.json)");
  c.architecture = parse_architecture(string_field(j, "architecture", "", file), file);
  c.hook_name = string_field(j, "hook_name", "", file);
  if (meta) c.hook_name = string_field(*meta, "hook_name", c.hook_name, file);
  if (c.architecture == SaeArchitecture::TopK) {
    const json* k = field(j, "k");
    c.k = k ? positive_int(*k, "'k'", file) : 100;
    c.rescale_acts_by_decoder_norm = bool_field(j, "rescale_acts_by_decoder_norm", false, file);
  }
}

void read_pre6(const json& j, SaeConfig& c, const std::string& file) {
  c.pre6 = true;
  refuse_unsupported_shapes(j, nullptr, file);
  c.hook_name = string_field(j, "hook_name", string_field(j, "hook_point", "", file), file);
  std::string activation = string_field(j, "activation_fn_str", string_field(j, "activation_fn", "relu", file), file);
  c.architecture = parse_architecture(string_field(j, "architecture", "standard", file), file);
  if (activation == "topk" || c.architecture == SaeArchitecture::TopK) {  // either spelling needs its k
    c.architecture = SaeArchitecture::TopK;
    const json* kwargs = field(j, "activation_fn_kwargs");
    const json* k = kwargs && kwargs->is_object() ? field(*kwargs, "k") : nullptr;
    if (!k) fail(file, "topk without 'activation_fn_kwargs.k'");
    c.k = positive_int(*k, "'activation_fn_kwargs.k'", file);
  } else if (activation != "relu") {
    fail(file, "activation " + json_quoted(activation) + " is not supported (relu and topk are)");
  }
  if (bool_field(j, "finetuning_scaling_factor", false, file))
    fail(file, "'finetuning_scaling_factor' true is not supported");
}

}  // namespace

const char* sae_architecture_name(SaeArchitecture a) {
  switch (a) {
    case SaeArchitecture::Standard: return "standard";
    case SaeArchitecture::JumpReLU: return "jumprelu";
    case SaeArchitecture::TopK: return "topk";
    case SaeArchitecture::Gated: return "gated";
  }
  return "?";
}

const char* sae_normalization_name(SaeNormalization n) {
  switch (n) {
    case SaeNormalization::None: return "none";
    case SaeNormalization::ExpectedAverageOnlyIn: return "expected_average_only_in";
    case SaeNormalization::ConstantNormRescale: return "constant_norm_rescale";
    case SaeNormalization::LayerNorm: return "layer_norm";
  }
  return "?";
}

SaeConfig parse_sae_config(const std::string& text, const std::string& file) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    fail(file, std::string("malformed JSON: ") + e.what());
  }
  if (!j.is_object()) fail(file, "cfg.json must be a JSON object");
  SaeConfig c;
  c.d_in = required_int(j, "d_in", file);
  c.d_sae = required_int(j, "d_sae", file);
  if (is_v6(j, file))
    read_v6(j, c, file);
  else
    read_pre6(j, c, file);
  if (c.hook_name.empty()) fail(file, "no hook name (metadata.hook_name, hook_name or hook_point)");
  for (unsigned char ch : c.hook_name)
    if (ch < 0x20 || ch == 0x7f) fail(file, "hook name " + json_quoted(c.hook_name) + " has a control character");
  c.apply_b_dec_to_input = bool_field(j, "apply_b_dec_to_input", true, file);
  c.normalization = parse_normalization(j, file);
  c.center_input = centred_input(j, file);
  if (c.architecture == SaeArchitecture::TopK && c.k > c.d_sae)
    fail(file, "topk k = " + std::to_string(c.k) + " exceeds d_sae = " + std::to_string(c.d_sae));
  return c;
}

}  // namespace nt
