#include "io/model_config.h"

#include <cmath>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "util/atomic_file.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

using nlohmann::json;

int get_int(const json& j, const std::string& path, const char* key, int fallback, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) throw Error(path + ": missing field " + quote_for_message(key));
    return fallback;
  }
  if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() > (1 << 30))
    throw Error(path + ": field " + quote_for_message(key) + " must be a non-negative integer");
  return it->get<int>();
}

int get_token_id(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return -1;
  if (it->is_number_integer()) return it->get<int>();
  if (it->is_array() && !it->empty() && (*it)[0].is_number_integer()) return (*it)[0].get<int>();
  return -1;
}

float get_float(const json& j, const std::string& path, const std::string& where, const char* key,
                float fallback, bool required) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (required) throw Error(path + ": missing field '" + where + key + "'");
    return fallback;
  }
  if (!it->is_number()) throw Error(path + ": field '" + where + key + "' must be a number");
  const float v = static_cast<float>(it->get<double>());
  if (!std::isfinite(v)) throw Error(path + ": field '" + where + key + "' must be a finite float32 number");
  return v;
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
  // n_inner defaults to 4 * n_embd, which must not overflow (n_embd may be up to 2^30); the
  // default is computed only when it is used.
  if (j.contains("n_inner") && !j["n_inner"].is_null()) {
    c.d_mlp = get_int(j, path, "n_inner", 0, true);
  } else if (c.d_model > (1 << 28)) {
    throw Error(path + ": field 'n_embd' is too large (4 * n_embd, the default n_inner, overflows)");
  } else {
    c.d_mlp = 4 * c.d_model;
  }
  c.norm_eps = get_float(j, path, "", "layer_norm_epsilon", 1e-5f, false);
  c.activation = j.value("activation_function", std::string("gelu_new"));
  if (c.activation != "gelu_new" && c.activation != "gelu_pytorch_tanh")
    throw Error(path + ": unsupported activation_function " + quote_for_message(c.activation) + " (supported: gelu_new)");
  c.tie_embeddings = j.value("tie_word_embeddings", true);
  if (j.value("scale_attn_by_inverse_layer_idx", false))
    throw Error(path + ": scale_attn_by_inverse_layer_idx is not supported");
  if (j.contains("scale_attn_weights") && !j.value("scale_attn_weights", true))
    throw Error(path + ": scale_attn_weights=false is not supported");
  c.bos_id = get_token_id(j, "bos_token_id");
  c.eos_id = get_token_id(j, "eos_token_id");
}


// rope_scaling (or, in newer files, rope_parameters): null / "default" -> none, "linear",
// "llama3". Anything else (yarn, dynamic, longrope, ...) changes the numbers in ways not
// implemented here, so it is an error rather than a silently different model.
void parse_rope_scaling(const json& j, const std::string& path, ModelConfig& c) {
  const json* rs = nullptr;
  std::string key = "rope_scaling";
  if (auto it = j.find("rope_scaling"); it != j.end() && !it->is_null()) {
    rs = &*it;
  } else if (auto p = j.find("rope_parameters"); p != j.end() && p->is_object()) {
    rs = &*p;
    key = "rope_parameters";
  }
  if (rs == nullptr) return;
  if (!rs->is_object()) throw Error(path + ": field " + quote_for_message(key) + " must be an object or null");
  std::string type = "default";
  for (const char* k : {"rope_type", "type"}) {
    auto t = rs->find(k);
    if (t == rs->end() || t->is_null()) continue;
    if (!t->is_string()) throw Error(path + ": field '" + key + "." + k + "' must be a string");
    type = t->get<std::string>();
    break;
  }
  const std::string where = key + ".";
  if (type == "default") {
    c.rope_scaling.type = RopeScalingType::None;
  } else if (type == "linear") {
    c.rope_scaling.type = RopeScalingType::Linear;
    c.rope_scaling.factor = get_float(*rs, path, where, "factor", 1.0f, true);
  } else if (type == "llama3") {
    RopeScaling& r = c.rope_scaling;
    r.type = RopeScalingType::Llama3;
    r.factor = get_float(*rs, path, where, "factor", 1.0f, true);
    r.low_freq_factor = get_float(*rs, path, where, "low_freq_factor", 1.0f, true);
    r.high_freq_factor = get_float(*rs, path, where, "high_freq_factor", 4.0f, true);
    auto it = rs->find("original_max_position_embeddings");
    if (it == rs->end() || !it->is_number_integer() || it->get<int64_t>() <= 0 || it->get<int64_t>() > (1 << 30))
      throw Error(path + ": field '" + where +
                  "original_max_position_embeddings' must be a positive integer");
    r.original_max_position_embeddings = it->get<int>();
    if (!(r.high_freq_factor > r.low_freq_factor) || !(r.low_freq_factor > 0))
      throw Error(path + ": " + key + " llama3 needs 0 < low_freq_factor < high_freq_factor");
  } else {
    throw Error(path + ": unsupported " + key + " type " + quote_for_message(type) +
                " (supported: null, default, linear, llama3)");
  }
  if (!(c.rope_scaling.factor > 0)) throw Error(path + ": field '" + where + "factor' must be positive");
}

// Llama and the models that share its layout: mistral (same tensors; sliding-window attention)
// and qwen2 (q/k/v biases).
void parse_llama(const json& j, const std::string& path, ModelConfig& c) {
  c.arch = Arch::Llama;
  c.n_layer = get_int(j, path, "num_hidden_layers", 0, true);
  c.d_model = get_int(j, path, "hidden_size", 0, true);
  c.n_head = get_int(j, path, "num_attention_heads", 0, true);
  c.n_kv_head = get_int(j, path, "num_key_value_heads", c.n_head, false);
  c.head_dim = get_int(j, path, "head_dim", 0, false);  // 0: hidden_size / num_attention_heads
  c.d_mlp = get_int(j, path, "intermediate_size", 0, true);
  c.vocab_size = get_int(j, path, "vocab_size", 0, true);
  c.n_ctx = get_int(j, path, "max_position_embeddings", 0, true);
  c.norm_eps = get_float(j, path, "", "rms_norm_eps", 1e-6f, false);
  c.activation = j.value("hidden_act", std::string("silu"));
  if (c.activation == "swish") c.activation = "silu";  // the same function in transformers
  if (c.activation != "silu")
    throw Error(path + ": unsupported hidden_act " + quote_for_message(c.activation) + " (supported: silu)");
  c.tie_embeddings = j.value("tie_word_embeddings", false);
  c.bos_id = get_token_id(j, "bos_token_id");
  c.eos_id = get_token_id(j, "eos_token_id");

  c.rope_theta = get_float(j, path, "", "rope_theta", 10000.0f, false);
  if (!j.contains("rope_theta"))
    if (auto p = j.find("rope_parameters"); p != j.end() && p->is_object())
      c.rope_theta = get_float(*p, path, "rope_parameters.", "rope_theta", 10000.0f, false);
  if (!(c.rope_theta > 0)) throw Error(path + ": field 'rope_theta' must be positive");
  parse_rope_scaling(j, path, c);

  if (c.model_type == "qwen2") {
    c.attention_bias = true;  // Qwen2Attention: q/k/v with bias, o_proj without
    c.o_proj_bias = false;
    c.mlp_bias = false;
  } else if (c.model_type == "mistral") {
    c.attention_bias = c.o_proj_bias = c.mlp_bias = false;  // MistralAttention has no biases
  } else {
    c.attention_bias = c.o_proj_bias = j.value("attention_bias", false);
    c.mlp_bias = j.value("mlp_bias", false);
  }

  // Sliding-window attention (mistral; qwen2 with use_sliding_window) equals full attention while
  // a sequence fits in the window, so the context is capped at the window instead.
  bool sliding = c.model_type == "mistral" ||
                 (c.model_type == "qwen2" && j.value("use_sliding_window", false));
  if (sliding) {
    const int window = get_int(j, path, "sliding_window", 0, false);
    if (window > 0 && window < c.n_ctx) c.n_ctx = window;
  }

  if (c.n_head > 0 && c.n_kv_head <= 0)
    throw Error(path + ": num_key_value_heads must be positive");
  if (c.n_head > 0 && c.n_kv_head > 0 && c.n_head % c.n_kv_head != 0)
    throw Error(path + ": num_attention_heads " + std::to_string(c.n_head) +
                " is not divisible by num_key_value_heads " + std::to_string(c.n_kv_head));
  if (c.head_dim % 2 != 0) throw Error(path + ": head_dim must be even for RoPE");
}

// A softcapping value: null or absent means no cap; otherwise a positive finite number.
float get_softcap(const json& j, const std::string& path, const char* key) {
  const float cap = get_float(j, path, "", key, 0.0f, false);
  if (j.contains(key) && !j[key].is_null() && !(cap > 0))
    throw Error(path + ": field '" + key + "' must be a positive number or null");
  return cap;
}

// GPT-NeoX (Pythia). rotary_pct and rotary_emb_base are the keys of every Pythia config
// (transformers 4.24); newer files add partial_rotary_factor / rope_theta as copies, which are read
// only when the original keys are absent.
void parse_gpt_neox(const json& j, const std::string& path, ModelConfig& c) {
  c.arch = Arch::GptNeox;
  c.n_layer = get_int(j, path, "num_hidden_layers", 0, true);
  c.d_model = get_int(j, path, "hidden_size", 0, true);
  c.n_head = get_int(j, path, "num_attention_heads", 0, true);
  c.n_kv_head = c.n_head;
  c.d_mlp = get_int(j, path, "intermediate_size", 0, true);
  c.vocab_size = get_int(j, path, "vocab_size", 0, true);
  c.n_ctx = get_int(j, path, "max_position_embeddings", 0, true);
  c.norm_eps = get_float(j, path, "", "layer_norm_eps", 1e-5f, false);
  c.activation = j.value("hidden_act", std::string("gelu"));
  if (c.activation != "gelu" && c.activation != "gelu_new" && c.activation != "gelu_pytorch_tanh")
    throw Error(path + ": unsupported hidden_act '" + c.activation +
                "' (supported: gelu, gelu_new, gelu_pytorch_tanh)");
  c.tie_embeddings = j.value("tie_word_embeddings", false);
  c.parallel_residual = j.value("use_parallel_residual", true);
  if (!j.value("attention_bias", true)) throw Error(path + ": attention_bias=false is not supported");
  c.bos_id = get_token_id(j, "bos_token_id");
  c.eos_id = get_token_id(j, "eos_token_id");

  const char* pct_key = j.contains("rotary_pct") ? "rotary_pct" : "partial_rotary_factor";
  auto pct = j.find(pct_key);
  if (pct == j.end() || pct->is_null()) throw Error(path + ": missing field 'rotary_pct'");
  if (!pct->is_number() || !(pct->get<double>() > 0.0) || !(pct->get<double>() <= 1.0))
    throw Error(path + ": field '" + pct_key + "' must be a number in (0, 1]");
  if (c.n_head > 0 && c.d_model % c.n_head == 0) {
    // transformers: int(head_size * rotary_pct), in double precision.
    c.rotary_dims = static_cast<int>(static_cast<double>(c.d_model / c.n_head) * pct->get<double>());
    if (c.rotary_dims < 2 || c.rotary_dims % 2 != 0)
      throw Error(path + ": " + pct_key + " gives " + std::to_string(c.rotary_dims) +
                  " rotary dims per head (must be even and at least 2)");
  }
  const char* base_key = j.contains("rotary_emb_base") ? "rotary_emb_base" : "rope_theta";
  c.rope_theta = get_float(j, path, "", base_key, 10000.0f, false);
  if (!(c.rope_theta > 0)) throw Error(path + ": field '" + base_key + "' must be positive");
  if (auto rs = j.find("rope_scaling"); rs != j.end() && !rs->is_null())
    throw Error(path + ": rope_scaling is not supported for gpt_neox");
}

// Gemma-2. head_dim and query_pre_attn_scalar are explicit in every Gemma-2 config and change the
// numbers, so they are required rather than given transformers' defaults.
void parse_gemma2(const json& j, const std::string& path, ModelConfig& c) {
  c.arch = Arch::Gemma2;
  c.n_layer = get_int(j, path, "num_hidden_layers", 0, true);
  c.d_model = get_int(j, path, "hidden_size", 0, true);
  c.n_head = get_int(j, path, "num_attention_heads", 0, true);
  c.n_kv_head = get_int(j, path, "num_key_value_heads", c.n_head, false);
  c.head_dim = get_int(j, path, "head_dim", 0, true);
  c.d_mlp = get_int(j, path, "intermediate_size", 0, true);
  c.vocab_size = get_int(j, path, "vocab_size", 0, true);
  c.n_ctx = get_int(j, path, "max_position_embeddings", 0, true);
  c.norm_eps = get_float(j, path, "", "rms_norm_eps", 1e-6f, false);
  // Gemma2MLP reads hidden_activation; hidden_act is its older copy.
  const char* act_key = j.contains("hidden_activation") && !j["hidden_activation"].is_null() ? "hidden_activation"
                                                                                               : "hidden_act";
  c.activation = j.value(act_key, std::string("gelu_pytorch_tanh"));
  if (c.activation != "gelu_pytorch_tanh" && c.activation != "gelu_new")
    throw Error(path + ": unsupported " + act_key + " '" + c.activation + "' (supported: gelu_pytorch_tanh)");
  c.tie_embeddings = j.value("tie_word_embeddings", true);
  if (j.value("attention_bias", false)) throw Error(path + ": attention_bias=true is not supported");
  c.bos_id = get_token_id(j, "bos_token_id");
  c.eos_id = get_token_id(j, "eos_token_id");
  c.rope_theta = get_float(j, path, "", "rope_theta", 10000.0f, false);
  if (!(c.rope_theta > 0)) throw Error(path + ": field 'rope_theta' must be positive");
  if (auto rs = j.find("rope_scaling"); rs != j.end() && !rs->is_null())
    throw Error(path + ": rope_scaling is not supported for gemma2");

  auto qs = j.find("query_pre_attn_scalar");
  if (qs == j.end() || qs->is_null()) throw Error(path + ": missing field 'query_pre_attn_scalar'");
  const float scalar = get_float(j, path, "", "query_pre_attn_scalar", 0.0f, true);
  if (!(scalar > 0)) throw Error(path + ": field 'query_pre_attn_scalar' must be positive");
  c.attn_scale = static_cast<float>(std::pow(static_cast<double>(scalar), -0.5));  // Python float
  c.attn_softcap = get_softcap(j, path, "attn_logit_softcapping");
  c.final_softcap = get_softcap(j, path, "final_logit_softcapping");
  c.sliding_window = get_int(j, path, "sliding_window", 0, false);
  if (j.contains("sliding_window") && !j["sliding_window"].is_null() && c.sliding_window <= 0)
    throw Error(path + ": field 'sliding_window' must be positive or null");

  if (c.n_kv_head <= 0) throw Error(path + ": num_key_value_heads must be positive");
  if (c.n_head % c.n_kv_head != 0)
    throw Error(path + ": num_attention_heads " + std::to_string(c.n_head) +
                " is not divisible by num_key_value_heads " + std::to_string(c.n_kv_head));
  if (c.head_dim <= 0 || c.head_dim % 2 != 0) throw Error(path + ": head_dim must be positive and even for RoPE");
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
    throw Error(path + ": malformed JSON (" + escape_for_message(e.what()) + ")");
  }
  if (!j.is_object()) throw Error(path + ": expected a JSON object");
  ModelConfig c;
  try {
    auto it = j.find("model_type");
    if (it == j.end() || !it->is_string()) throw Error(path + ": missing field 'model_type'");
    c.model_type = it->get<std::string>();
    if (c.model_type == "gpt2") {
      parse_gpt2(j, path, c);
    } else if (c.model_type == "llama" || c.model_type == "mistral" || c.model_type == "qwen2") {
      parse_llama(j, path, c);
    } else if (c.model_type == "gpt_neox") {
      parse_gpt_neox(j, path, c);
    } else if (c.model_type == "gemma2") {
      parse_gemma2(j, path, c);
    } else {
      throw Error(path + ": unknown model_type " + quote_for_message(c.model_type) +
                  " (supported: gpt2, llama, mistral, qwen2, gpt_neox, gemma2)");
    }
  } catch (const json::exception& e) {
    throw Error(path + ": invalid field (" + escape_for_message(e.what()) + ")");
  }
  const bool gpt2 = c.arch == Arch::Gpt2;
  if (c.n_layer <= 0 || c.d_model <= 0 || c.n_head <= 0 || c.vocab_size <= 0 || c.d_mlp <= 0)
    throw Error(path + (gpt2 ? ": n_layer, n_embd, n_head, vocab_size must be positive"
                             : ": num_hidden_layers, hidden_size, num_attention_heads, "
                               "intermediate_size, vocab_size must be positive"));
  if (c.head_dim == 0) {
    if (c.d_model % c.n_head != 0)
      throw Error(path + (gpt2 ? ": n_embd " : ": hidden_size ") + std::to_string(c.d_model) +
                  (gpt2 ? " is not divisible by n_head " : " is not divisible by num_attention_heads ") +
                  std::to_string(c.n_head));
    c.head_dim = c.d_model / c.n_head;
    if (!gpt2 && c.head_dim % 2 != 0) throw Error(path + ": head_dim must be even for RoPE");
  }
  if (!(c.norm_eps > 0)) throw Error(path + ": layer norm epsilon must be positive");
  // Sizes beyond any real model are refused here, before they are multiplied into buffer sizes.
  auto limit = [&](int64_t v, int64_t lo, int64_t hi, const char* what) {
    if (v < lo || v > hi)
      throw Error(path + ": " + what + " " + std::to_string(v) + " is out of range [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "]");
  };
  limit(c.n_layer, 1, 1024, gpt2 ? "n_layer" : "num_hidden_layers");
  limit(c.d_model, 1, 1 << 17, gpt2 ? "n_embd" : "hidden_size");
  limit(c.d_mlp, 1, 1 << 19, gpt2 ? "n_inner" : "intermediate_size");
  limit(c.vocab_size, 1, 1 << 24, "vocab_size");
  limit(c.n_ctx, 1, 1 << 24, gpt2 ? "n_positions" : "max_position_embeddings");
  limit(static_cast<int64_t>(c.n_head) * c.head_dim, 1, 1 << 17, gpt2 ? "n_head x head size" : "num_attention_heads x head_dim");
  limit(static_cast<int64_t>(c.n_kv_head) * c.head_dim, 1, 1 << 17, "num_key_value_heads x head_dim");
  return c;
}

}  // namespace nt
