#include "model/gemma2.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "model/kernels.h"
#include "model/kernels_neox_gemma.h"
#include "util/error.h"

namespace nt {

namespace {

// C = d_model, M = d_mlp, Q = n_head * head_dim, K = n_kv_head * head_dim. Norm weights are kept
// as 1 + w (Gemma stores them as offsets from 1).
struct Gemma2Block {
  std::vector<float> ln_in;     // [C]     input_layernorm
  Matrix q_w;                   // [Q, C]  self_attn.q_proj
  Matrix k_w;                   // [K, C]  self_attn.k_proj
  Matrix v_w;                   // [K, C]  self_attn.v_proj
  Matrix o_w;                   // [C, Q]  self_attn.o_proj
  std::vector<float> ln_attn;   // [C]     post_attention_layernorm (on attention's output)
  std::vector<float> ln_pre_ff; // [C]     pre_feedforward_layernorm
  Matrix gate_w;                // [M, C]  mlp.gate_proj
  Matrix up_w;                  // [M, C]  mlp.up_proj
  Matrix down_w;                // [C, M]  mlp.down_proj
  std::vector<float> ln_ff;     // [C]     post_feedforward_layernorm (on the MLP's output)
};

// Activations of one step, resized to the step's row count (capacity is kept between steps).
struct RunState {
  std::vector<float> x;     // [rows, C]  residual stream
  std::vector<float> ln;    // [rows, C]  normalized input of a sub-layer
  std::vector<float> q;     // [rows, Q]
  std::vector<float> k;     // [rows, K]
  std::vector<float> v;     // [rows, K]
  std::vector<float> att;   // [rows, Q]  attention output before o_proj
  std::vector<float> out;   // [rows, C]  a sub-layer's output, post-normed in place
  std::vector<float> gate;  // [rows, M]  gate_proj, then gelu_tanh(gate) * up
  std::vector<float> up;    // [rows, M]
  std::vector<float> last;  // [logit rows, C]
};

class Gemma2Model : public Model {
 public:
  Gemma2Model(const ModelConfig& config, std::unique_ptr<ModelWeights> weights,
              WeightFormat format)
      : config_(config), weights_(std::move(weights)) {
    const int64_t C = config.d_model, M = config.d_mlp, V = config.vocab_size;
    const int64_t Q = static_cast<int64_t>(config.n_head) * config.head_dim;
    const int64_t K = static_cast<int64_t>(config.n_kv_head) * config.head_dim;
    ModelWeights& w = *weights_;
    embed_ = w.row_table("model.embed_tokens.weight", {V, C});
    auto norm = [&](const std::string& name) { return one_plus(w.get(name, {C}), static_cast<size_t>(C)); };
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
      blocks_.push_back(Gemma2Block{
          norm(p + "input_layernorm.weight"),
          matrix(a + "q_proj.weight", Q, C), matrix(a + "k_proj.weight", K, C),
          matrix(a + "v_proj.weight", K, C), matrix(a + "o_proj.weight", C, Q),
          norm(p + "post_attention_layernorm.weight"), norm(p + "pre_feedforward_layernorm.weight"),
          matrix(m + "gate_proj.weight", M, C), matrix(m + "up_proj.weight", M, C),
          matrix(m + "down_proj.weight", C, M), norm(p + "post_feedforward_layernorm.weight")});
    }
    norm_w_ = norm("model.norm.weight");
    // The embedding lookup reads rows from the file (embed_); the LM head is its own converted copy
    // of the embedding when tied.
    lm_head_ = matrix(config.tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight", V, C);
    weight_bytes_ = w.bytes_used() - f32_bytes + stored_bytes;
    inv_freq_ = rope_inv_freq(config.head_dim, config.rope_theta, RopeScaling{});
    // transformers: torch.tensor(hidden_size ** 0.5, dtype=float32), multiplied in float32
    embed_scale_ = static_cast<float>(std::sqrt(static_cast<double>(C)));
  }

  const ModelConfig& config() const override { return config_; }
  size_t weight_bytes() const override { return weight_bytes_; }

  void forward(const StepBatch& batch, KVCache& cache, const Hooks* hooks, float* logits) override {
    const int n = static_cast<int>(batch.tokens.size());
    const int C = config_.d_model, M = config_.d_mlp, H = config_.n_head, KVH = config_.n_kv_head;
    const int hd = config_.head_dim, Q = H * hd, K = KVH * hd;
    const size_t rows_n = static_cast<size_t>(n);
    const size_t nc = rows_n * C;
    const float eps = config_.norm_eps;
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
    // Embeddings: x = embed_tokens[token] * sqrt(C) (positions enter through RoPE only)
    for (int r = 0; r < n; ++r) {
      const int tok = batch.tokens[r];
      float* xr = s.x.data() + static_cast<size_t>(r) * C;
      embed_.copy_row(tok, xr);
      for (int i = 0; i < C; ++i) xr[i] *= embed_scale_;
    }
    hook(HookSite::Embed, -1, s.x.data(), C);

    // A step that wants no logits may stop after block last_layer (capturing early-layer neurons).
    const int n_run = batch.last_layer >= 0 && batch.logit_rows.empty() ? std::min(batch.last_layer + 1, config_.n_layer)
                                                                        : config_.n_layer;
    for (int l = 0; l < n_run; ++l) {
      const Gemma2Block& b = blocks_[static_cast<size_t>(l)];
      hook(HookSite::ResidPre, l, s.x.data(), C);
      // Attention: soft-capped scores; a sliding window on even layers (transformers:
      // `sliding_window if not layer_idx % 2`)
      rms_norm(s.x.data(), n, C, b.ln_in.data(), eps, s.ln.data());
      linear(s.ln.data(), n, b.q_w, nullptr, s.q.data());
      linear(s.ln.data(), n, b.k_w, nullptr, s.k.data());
      linear(s.ln.data(), n, b.v_w, nullptr, s.v.data());
      rope(s.q.data(), H, s.k.data(), KVH, rows, hd, inv_freq_.data());
      AttentionOptions options;
      options.scale = config_.attn_scale;
      options.softcap = config_.attn_softcap;
      options.window = l % 2 == 0 ? config_.sliding_window : 0;
      attention(s.q.data(), 0, s.k.data(), s.v.data(), 0, rows, cache, l, H, KVH, hd, s.att.data(), options);
      linear(s.att.data(), n, b.o_w, nullptr, s.out.data());
      rms_norm(s.out.data(), n, C, b.ln_attn.data(), eps, s.out.data());
      hook(HookSite::AttnOut, l, s.out.data(), C);
      add_inplace(s.x.data(), s.out.data(), nc);
      hook(HookSite::ResidMid, l, s.x.data(), C);
      // MLP: post_ff_norm(down(gelu_tanh(gate(x)) * up(x)))
      rms_norm(s.x.data(), n, C, b.ln_pre_ff.data(), eps, s.ln.data());
      linear(s.ln.data(), n, b.gate_w, nullptr, s.gate.data());
      hook(HookSite::MlpPre, l, s.gate.data(), M);
      linear(s.ln.data(), n, b.up_w, nullptr, s.up.data());
      hook(HookSite::MlpPreLinear, l, s.up.data(), M);
      gelu_tanh_mul(s.gate.data(), s.up.data(), rows_n * M);
      hook(HookSite::MlpPost, l, s.gate.data(), M);
      linear(s.gate.data(), n, b.down_w, nullptr, s.out.data());
      rms_norm(s.out.data(), n, C, b.ln_ff.data(), eps, s.out.data());
      hook(HookSite::MlpOut, l, s.out.data(), C);
      add_inplace(s.x.data(), s.out.data(), nc);
      hook(HookSite::ResidPost, l, s.x.data(), C);
    }

    if (n_run < config_.n_layer) return;
    rms_norm(s.x.data(), n, C, norm_w_.data(), eps, s.ln.data());
    hook(HookSite::LnFinal, -1, s.ln.data(), C);
    if (batch.logit_rows.empty()) return;
    linear_gathered(s.ln.data(), batch.logit_rows, lm_head_, s.last, logits);
    if (config_.final_softcap > 0.0f)
      softcap(logits, batch.logit_rows.size() * static_cast<size_t>(config_.vocab_size), config_.final_softcap);
  }

 private:
  ModelConfig config_;
  std::unique_ptr<ModelWeights> weights_;
  RowTable embed_;  // [V, C]
  float embed_scale_ = 1.0f;      // sqrt(C) in float32
  std::vector<Gemma2Block> blocks_;
  std::vector<float> norm_w_;     // [C]  1 + model.norm.weight
  Matrix lm_head_;                // [V, C]
  std::vector<float> inv_freq_;   // [head_dim / 2]
  size_t weight_bytes_ = 0;
  RunState state_;
};

}  // namespace

std::vector<HookSite> gemma2_hook_sites(const ModelConfig&) {
  return {HookSite::Embed,  HookSite::ResidPre,     HookSite::AttnOut, HookSite::ResidMid,  HookSite::MlpPre,
          HookSite::MlpPreLinear, HookSite::MlpPost, HookSite::MlpOut, HookSite::ResidPost, HookSite::LnFinal};
}

std::unique_ptr<Model> load_gemma2(const ModelConfig& config,
                                   std::unique_ptr<ModelWeights> weights, WeightFormat format) {
  return std::make_unique<Gemma2Model>(config, std::move(weights), format);
}

}  // namespace nt
