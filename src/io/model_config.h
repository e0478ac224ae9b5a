#pragma once
// The hyper-parameters of a model, read from a Hugging Face config.json.
#include <string>

namespace nt {

enum class Arch { Gpt2, Llama, GptNeox, Gemma2 };

// RoPE frequency scaling (config.json "rope_scaling"). None: plain RoPE (rope_scaling null or
// type "default"). Linear: every inv_freq divided by `factor`. Llama3: Llama-3.1's wavelength-
// dependent scaling with factor, low_freq_factor, high_freq_factor, original_max_position_embeddings.
enum class RopeScalingType { None, Linear, Llama3 };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::None;
  float factor = 1.0f;
  float low_freq_factor = 1.0f;
  float high_freq_factor = 4.0f;
  int original_max_position_embeddings = 8192;
};

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

  // Llama family (model_type llama, mistral, qwen2). head_dim may differ from d_model / n_head
  // when config.json gives it (q/o projections are then n_head * head_dim wide).
  float rope_theta = 10000.0f;
  RopeScaling rope_scaling;
  bool attention_bias = false;  // q_proj, k_proj, v_proj have biases (always for qwen2)
  bool o_proj_bias = false;     // o_proj has a bias (llama attention_bias; never qwen2)
  bool mlp_bias = false;        // gate_proj, up_proj, down_proj have biases (llama mlp_bias)

  // GPT-NeoX (Pythia): RoPE on the first rotary_dims of each head (int(head_dim * rotary_pct)),
  // base rope_theta (rotary_emb_base); parallel residual x + attn(ln1 x) + mlp(ln2 x).
  int rotary_dims = 0;  // 0: all of head_dim
  bool parallel_residual = false;

  // Gemma-2: scores scaled by attn_scale (query_pre_attn_scalar^-0.5; 0: 1/sqrt(head_dim)) and
  // soft-capped as cap * tanh(s / cap) (0: no cap); logits capped the same way; layers with an even
  // index attend to their last sliding_window positions only (0: no window).
  float attn_scale = 0.0f;
  float attn_softcap = 0.0f;
  float final_softcap = 0.0f;
  int sliding_window = 0;
};

// Parses `<model_dir>/config.json`. Throws nt::Error naming the file on a missing file, malformed
// JSON, a missing or invalid field, or an unknown model_type.
ModelConfig load_model_config(const std::string& model_dir);

}  // namespace nt
