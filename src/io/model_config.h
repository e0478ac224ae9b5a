#pragma once
// The hyper-parameters of a model, read from a Hugging Face config.json.
#include <string>

namespace nt {

enum class Arch { Gpt2, Llama };

struct ModelConfig {
  Arch arch = Arch::Gpt2;
  std::string model_type;  // as written in config.json ("gpt2", "llama", ...)
  int n_layer = 0;
  int d_model = 0;         // residual stream width
  int n_head = 0;
  int n_kv_head = 0;       // = n_head for GPT-2
  int head_dim = 0;
  int d_mlp = 0;           // MLP hidden width (neurons per layer at mlp.hook_post)
  int vocab_size = 0;
  int n_ctx = 0;           // maximum sequence length (n_positions / max_position_embeddings)
  float norm_eps = 1e-5f;
  std::string activation;  // "gelu_new", "silu", ...
  bool tie_embeddings = true;
  int bos_id = -1;
  int eos_id = -1;
};

// Parses `<model_dir>/config.json`. Throws nt::Error naming the file on a missing file, malformed
// JSON, a missing or invalid field, or an unknown model_type.
ModelConfig load_model_config(const std::string& model_dir);

}  // namespace nt
