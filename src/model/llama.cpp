#include "model/llama.h"

#include <algorithm>
#include <vector>

#include "model/kernels.h"
#include "util/error.h"

namespace nt {

namespace {

// C = d_model, M = d_mlp, Q = n_head * head_dim, K = n_kv_head * head_dim. Biases are null when the
// model has none (only qwen2 has q/k/v biases; llama's attention_bias / mlp_bias add the rest).
struct LlamaBlock {
  const float* ln1_w;   // [C]     input_layernorm
  Matrix q_w;           // [Q, C]  self_attn.q_proj
  const float* q_b;     // [Q]
  Matrix k_w;           // [K, C]  self_attn.k_proj
  const float* k_b;     // [K]
  Matrix v_w;           // [K, C]  self_attn.v_proj
  const float* v_b;     // [K]
  Matrix o_w;           // [C, Q]  self_attn.o_proj
  const float* o_b;     // [C]
  const float* ln2_w;   // [C]     post_attention_layernorm
  Matrix gate_w;        // [M, C]  mlp.gate_proj
  const float* gate_b;  // [M]
  Matrix up_w;          // [M, C]  mlp.up_proj
  const float* up_b;    // [M]
  Matrix down_w;        // [C, M]  mlp.down_proj
  const float* down_b;  // [C]
};

// Activations of one step, resized to the step's row count (capacity is kept between steps).
struct RunState {
  std::vector<float> x;     // [rows, C]  residual stream
  std::vector<float> ln;    // [rows, C]  normalized input of a sub-layer
  std::vector<float> q;     // [rows, Q]
  std::vector<float> k;     // [rows, K]
  std::vector<float> v;     // [rows, K]
  std::vector<float> att;   // [rows, Q]  attention output before o_proj
  std::vector<float> out;   // [rows, C]  output of a sub-layer before the residual add
  std::vector<float> gate;  // [rows, M]  gate_proj, then silu(gate) * up
  std::vector<float> up;    // [rows, M]
  std::vector<float> last;  // [logit rows, C]
};

class LlamaModel : public Model {
 public:
  LlamaModel(const ModelConfig& config, std::unique_ptr<ModelWeights> weights,
             WeightFormat format)
      : config_(config), weights_(std::move(weights)) {
    const int64_t C = config.d_model, M = config.d_mlp, V = config.vocab_size;
    const int64_t Q = static_cast<int64_t>(config.n_head) * config.head_dim;
    const int64_t K = static_cast<int64_t>(config.n_kv_head) * config.head_dim;
    ModelWeights& w = *weights_;
    embed_ = w.row_table("model.embed_tokens.weight", {V, C});
    auto bias = [&](bool present, const std::string& name, int64_t n) -> const float* {
      return present ? w.get(name, {n}) : nullptr;
    };
    // Matrices of linear layers ([out, in]), converted to `format` here, once; the float32 bytes
    // they replace are swapped for the stored bytes in weight_bytes_.
    size_t f32_bytes = 0, stored_bytes = 0;
    auto matrix = [&](const std::string& name, int64_t out, int64_t in) {
      const float* p = w.get(name, {out, in});
      Matrix m(p, static_cast<int>(in), static_cast<int>(out), WeightLayout::OutIn, format);
      w.release(p);
      f32_bytes += m.f32_bytes();
      stored_bytes += m.bytes();
      return m;
    };
    for (int l = 0; l < config.n_layer; ++l) {
      const std::string p = "model.layers." + std::to_string(l) + ".";
      const std::string a = p + "self_attn.", m = p + "mlp.";
      const bool ab = config.attention_bias, ob = config.o_proj_bias, mb = config.mlp_bias;
      blocks_.push_back(LlamaBlock{
          w.get(p + "input_layernorm.weight", {C}),
          matrix(a + "q_proj.weight", Q, C), bias(ab, a + "q_proj.bias", Q),
          matrix(a + "k_proj.weight", K, C), bias(ab, a + "k_proj.bias", K),
          matrix(a + "v_proj.weight", K, C), bias(ab, a + "v_proj.bias", K),
          matrix(a + "o_proj.weight", C, Q), bias(ob, a + "o_proj.bias", C),
          w.get(p + "post_attention_layernorm.weight", {C}),
          matrix(m + "gate_proj.weight", M, C), bias(mb, m + "gate_proj.bias", M),
          matrix(m + "up_proj.weight", M, C), bias(mb, m + "up_proj.bias", M),
          matrix(m + "down_proj.weight", C, M), bias(mb, m + "down_proj.bias", C)});
    }
    norm_w_ = w.get("model.norm.weight", {C});
    // The embedding lookup reads rows from the file (embed_); the LM head is its own converted copy
    // of the embedding when tied.
    lm_head_ = matrix(config.tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight", V, C);
    weight_bytes_ = w.bytes_used() - f32_bytes + stored_bytes;
    inv_freq_ = rope_inv_freq(config.head_dim, config.rope_theta, config.rope_scaling);
  }

  const ModelConfig& config() const override { return config_; }
  size_t weight_bytes() const override { return weight_bytes_; }

  void forward(const StepBatch& batch, KVCache& cache, const Hooks* hooks, float* logits) override {
    const int n = static_cast<int>(batch.tokens.size());
    const int C = config_.d_model, M = config_.d_mlp, H = config_.n_head, KVH = config_.n_kv_head;
    const int hd = config_.head_dim, Q = H * hd, K = KVH * hd;
    const size_t rows_n = static_cast<size_t>(n);
    const size_t nc = rows_n * C;
    RunState& s = state_;
    s.x.resize(nc);
    s.ln.resize(nc);
    s.q.resize(rows_n * Q);
    s.k.resize(rows_n * K);
    s.v.resize(rows_n * K);
    s.att.resize(rows_n * Q);
    s.out.resize(nc);
    s.gate.resize(rows_n * M);
    s.up.resize(rows_n * M);
    std::span<const RowInfo> rows(batch.rows);
    auto hook = [&](HookSite site, int layer, float* acts, int width) {
      if (hooks && hooks->any({site, layer})) hooks->run({site, layer}, rows, acts, width);
    };

    check_step(batch, config_);
    // Embeddings: x = embed_tokens[token] (positions enter through RoPE only)
    for (int r = 0; r < n; ++r) {
      const int tok = batch.tokens[r];
      embed_.copy_row(tok, s.x.data() + static_cast<size_t>(r) * C);
    }
    hook(HookSite::Embed, -1, s.x.data(), C);

    // A step that wants no logits may stop after block last_layer (capturing early-layer neurons).
    const int n_run = batch.last_layer >= 0 && batch.logit_rows.empty() ? std::min(batch.last_layer + 1, config_.n_layer)
                                                                        : config_.n_layer;
    for (int l = 0; l < n_run; ++l) {
      const LlamaBlock& b = blocks_[static_cast<size_t>(l)];
      hook(HookSite::ResidPre, l, s.x.data(), C);
      // Attention
      rms_norm(s.x.data(), n, C, b.ln1_w, config_.norm_eps, s.ln.data());
      linear(s.ln.data(), n, b.q_w, b.q_b, s.q.data());
      linear(s.ln.data(), n, b.k_w, b.k_b, s.k.data());
      linear(s.ln.data(), n, b.v_w, b.v_b, s.v.data());
      rope(s.q.data(), H, s.k.data(), KVH, rows, hd, inv_freq_.data());
      attention(s.q.data(), 0, s.k.data(), s.v.data(), 0, rows, cache, l, H, KVH, hd, s.att.data());
      linear(s.att.data(), n, b.o_w, b.o_b, s.out.data());
      hook(HookSite::AttnOut, l, s.out.data(), C);
      add_inplace(s.x.data(), s.out.data(), nc);
      hook(HookSite::ResidMid, l, s.x.data(), C);
      // MLP: down(silu(gate(x)) * up(x))
      rms_norm(s.x.data(), n, C, b.ln2_w, config_.norm_eps, s.ln.data());
      linear(s.ln.data(), n, b.gate_w, b.gate_b, s.gate.data());
      hook(HookSite::MlpPre, l, s.gate.data(), M);
      linear(s.ln.data(), n, b.up_w, b.up_b, s.up.data());
      hook(HookSite::MlpPreLinear, l, s.up.data(), M);
      silu_mul(s.gate.data(), s.up.data(), rows_n * M);
      hook(HookSite::MlpPost, l, s.gate.data(), M);
      linear(s.gate.data(), n, b.down_w, b.down_b, s.out.data());
      hook(HookSite::MlpOut, l, s.out.data(), C);
      add_inplace(s.x.data(), s.out.data(), nc);
      hook(HookSite::ResidPost, l, s.x.data(), C);
    }

    if (n_run < config_.n_layer) return;
    rms_norm(s.x.data(), n, C, norm_w_, config_.norm_eps, s.ln.data());
    hook(HookSite::LnFinal, -1, s.ln.data(), C);
    if (!batch.logit_rows.empty()) linear_gathered(s.ln.data(), batch.logit_rows, lm_head_, s.last, logits);
  }

 private:
  ModelConfig config_;
  std::unique_ptr<ModelWeights> weights_;
  RowTable embed_;  // [V, C]
  std::vector<LlamaBlock> blocks_;
  const float* norm_w_ = nullptr;   // [C]
  Matrix lm_head_;                  // [V, C]
  std::vector<float> inv_freq_;     // [head_dim / 2]
  size_t weight_bytes_ = 0;
  RunState state_;
};

}  // namespace

std::vector<HookSite> llama_hook_sites(const ModelConfig&) {
  return {HookSite::Embed,  HookSite::ResidPre,     HookSite::AttnOut, HookSite::ResidMid,  HookSite::MlpPre,
          HookSite::MlpPreLinear, HookSite::MlpPost, HookSite::MlpOut, HookSite::ResidPost, HookSite::LnFinal};
}

std::unique_ptr<Model> load_llama(const ModelConfig& config,
                                  std::unique_ptr<ModelWeights> weights, WeightFormat format) {
  return std::make_unique<LlamaModel>(config, std::move(weights), format);
}

}  // namespace nt
