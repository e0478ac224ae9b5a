#include "io/model_config.h"

#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/atomic_file.h"
#include "util/error.h"

namespace nt {

namespace {

using nlohmann::json;

int get_int(const json& j, const std::string& path, const char* key, int fallback, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) throw Error(path + ": missing field '" + key + "'");
    return fallback;
  }
  if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > (1 << 30))
    throw Error(path + ": field '" + key + "' must be a non-negative integer");
  return it->get<int>();
}

int get_token_id(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return -1;
  if (it->is_number_integer()) return it->get<int>();
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) return (*it)[0].get<int>();
  return -1;
}

void parse_gpt2(const json& j, const std::string& path, ModelConfig& c) {
  c.arch = Arch::Gpt2;
  c.n_layer = get_int(j, path, "n_layer", 0, true);
  c.d_model = get_int(j, path, "n_embd", 0, true);
  c.n_head = get_int(j, path, "n_head", 0, true);
  c.n_kv_head = c.n_head;
  c.vocab_size = get_int(j, path, "vocab_size", 0, true);
  c.n_ctx = get_int(j, path, "n_positions", get_int(j, path, "n_ctx", 0, false), false);
  if (c.n_ctx == 0) throw Error(path + ": missing field 'n_positions'");
  c.d_mlp = get_int(j, path, "n_inner", 4 * c.d_model, false);
  c.norm_eps = j.value("layer_norm_epsilon", 1e-5f);
  c.activation = j.value("activation_function", std::string("gelu_new"));
  if (c.activation != "gelu_new" && c.activation != "gelu_pytorch_tanh")
    throw Error(path + ": unsupported activation_function '" + c.activation + "' (supported: gelu_new)");
  c.tie_embeddings = j.value("tie_word_embeddings", true);
  if (j.value("scale_attn_by_inverse_layer_idx", false))
    throw Error(path + ": scale_attn_by_inverse_layer_idx is not supported");
  if (j.contains("scale_attn_weights") && !j.value("scale_attn_weights", true))
    throw Error(path + ": scale_attn_weights=false is not supported");
  c.bos_id = get_token_id(j, "bos_token_id");
  c.eos_id = get_token_id(j, "eos_token_id");
}

}  // namespace

ModelConfig load_model_config(const std::string& model_dir) {
  if (!std::filesystem::is_directory(model_dir))
    throw Error(model_dir + ": model directory not found");
  const std::string path = model_dir + "/config.json";
  if (!std::filesystem::exists(path)) throw Error(path + ": missing config.json");
  json j;
  try {
    j = json::parse(read_file(path));
  } catch (const json::exception& e) {
    std::string what = e.what();
    throw Error(path + ": malformed JSON (" + what.substr(0, what.find('\n')) + ")");
  }
  if (!j.is_object()) throw Error(path + ": expected a JSON object");
  ModelConfig c;
  try {
    auto it = j.find("model_type");
    if (it == j.end() || !it->is_string()) throw Error(path + ": missing field 'model_type'");
    c.model_type = it->get<std::string>();
    if (c.model_type == "gpt2") {
      parse_gpt2(j, path, c);
    } else {
      throw Error(path + ": unknown model_type '" + c.model_type + "' (supported: gpt2)");
    }
  } catch (const json::exception& e) {
    throw Error(path + ": invalid field (" + std::string(e.what()) + ")");
  }
  if (c.n_layer <= 0 || c.d_model <= 0 || c.n_head <= 0 || c.vocab_size <= 0 || c.d_mlp <= 0)
    throw Error(path + ": n_layer, n_embd, n_head, vocab_size must be positive");
  if (c.d_model % c.n_head != 0)
    throw Error(path + ": n_embd " + std::to_string(c.d_model) + " is not divisible by n_head " +
                std::to_string(c.n_head));
  if (c.head_dim == 0) c.head_dim = c.d_model / c.n_head;
  if (!(c.norm_eps > 0)) throw Error(path + ": layer norm epsilon must be positive");
  return c;
}

}  // namespace nt
