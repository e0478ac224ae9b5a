#include "model/gpt_neox.h"

#include <algorithm>
#include <vector>

#include "model/kernels.h"
#include "model/kernels_neox_gemma.h"
#include "util/error.h"

namespace nt {

namespace {

// C = d_model, M = d_mlp. The fused projection's output rows are reordered at load from the
// checkpoint's per-head [n_head][q | k | v] to [q | k | v][n_head] (GPT-2's layout), so one product
// gives each row's q, k and v as three contiguous blocks that attention reads in place.
struct NeoxBlock {
  const float* ln1_w;         // [C]     input_layernorm
  const float* ln1_b;         // [C]
  Matrix qkv_w;               // [3C, C] attention.query_key_value, rows reordered
  std::vector<float> qkv_b;   // [3C]    reordered likewise
  Matrix dense_w;             // [C, C]  attention.dense
  const float* dense_b;       // [C]
  const float* ln2_w;         // [C]     post_attention_layernorm
  const float* ln2_b;         // [C]
  Matrix fc_w;                // [M, C]  mlp.dense_h_to_4h
  const float* fc_b;          // [M]
  Matrix out_w;               // [C, M]  mlp.dense_4h_to_h
  const float* out_b;         // [C]
};

// Activations of one step, resized to the step's row count (capacity is kept between steps).
struct RunState {
  std::vector<float> x;     // [rows, C]   residual stream
  std::vector<float> ln;    // [rows, C]   normalized input of a sub-layer
  std::vector<float> qkv;   // [rows, 3C]  q | k | v of each row
  std::vector<float> att;   // [rows, C]   attention output before dense
  std::vector<float> attn;  // [rows, C]   attention's output (hook_attn_out)
  std::vector<float> out;   // [rows, C]   the MLP's output (hook_mlp_out)
  std::vector<float> mlp;   // [rows, M]
  std::vector<float> last;  // [logit rows, C]
};

// Checkpoint row of output `row` of the reordered projection: part p (0 q, 1 k, 2 v) of head h.
int64_t checkpoint_qkv_row(int64_t row, int64_t C, int64_t head_dim) {
  const int64_t part = row / C, h = (row % C) / head_dim, i = row % head_dim;
  return h * 3 * head_dim + part * head_dim + i;
}

class GptNeoxModel : public Model {
 public:
  GptNeoxModel(const ModelConfig& config, std::unique_ptr<ModelWeights> weights,
               WeightFormat format)
      : config_(config), weights_(std::move(weights)) {
    const int64_t C = config.d_model, M = config.d_mlp, V = config.vocab_size, hd = config.head_dim;
    ModelWeights& w = *weights_;
    embed_ = w.row_table("gpt_neox.embed_in.weight", {V, C});
    // Matrices of linear layers ([out, in]), converted to `format` here, once; the float32 bytes
    // they replace are swapped for the stored bytes in weight_bytes_.
    size_t f32_bytes = 0, stored_bytes = 0;
    auto add_matrix = [&](Matrix m) {
      f32_bytes += m.f32_bytes();
      stored_bytes += m.bytes();
      return m;
    };
    auto matrix = [&](const std::string& name, int64_t out, int64_t in) {
      const float* p = w.get(name, {out, in});
      Matrix m(p, static_cast<int>(in), static_cast<int>(out), WeightLayout::OutIn, format);
      w.release(p);
      return add_matrix(std::move(m));
    };
    std::vector<float> reordered(static_cast<size_t>(3 * C * C));
    for (int l = 0; l < config.n_layer; ++l) {
      const std::string p = "gpt_neox.layers." + std::to_string(l) + ".";
      const float* qkv = w.get(p + "attention.query_key_value.weight", {3 * C, C});
      const float* qkv_b = w.get(p + "attention.query_key_value.bias", {3 * C});
      std::vector<float> bias(static_cast<size_t>(3 * C));
      for (int64_t r = 0; r < 3 * C; ++r) {
        const int64_t src = checkpoint_qkv_row(r, C, hd);
        std::copy_n(qkv + src * C, C, reordered.data() + r * C);
        bias[static_cast<size_t>(r)] = qkv_b[src];
      }
      Matrix qkv_w(reordered.data(), static_cast<int>(C), static_cast<int>(3 * C), WeightLayout::OutIn, format);
      w.release(qkv);
      blocks_.push_back(NeoxBlock{
          w.get(p + "input_layernorm.weight", {C}), w.get(p + "input_layernorm.bias", {C}),
          add_matrix(std::move(qkv_w)), std::move(bias),
          matrix(p + "attention.dense.weight", C, C), w.get(p + "attention.dense.bias", {C}),
          w.get(p + "post_attention_layernorm.weight", {C}), w.get(p + "post_attention_layernorm.bias", {C}),
          matrix(p + "mlp.dense_h_to_4h.weight", M, C), w.get(p + "mlp.dense_h_to_4h.bias", {M}),
          matrix(p + "mlp.dense_4h_to_h.weight", C, M), w.get(p + "mlp.dense_4h_to_h.bias", {C})});
    }
    lnf_w_ = w.get("gpt_neox.final_layer_norm.weight", {C});
    lnf_b_ = w.get("gpt_neox.final_layer_norm.bias", {C});
    // The embedding lookup reads rows from the file (embed_); the LM head is its own converted copy
    // of the embedding when tied.
    lm_head_ = matrix(config.tie_embeddings ? "gpt_neox.embed_in.weight" : "embed_out.weight", V, C);
    weight_bytes_ = w.bytes_used() - f32_bytes + stored_bytes;
    inv_freq_ = rope_inv_freq(config.rotary_dims, config.rope_theta, RopeScaling{});
  }

  const ModelConfig& config() const override { return config_; }
  size_t weight_bytes() const override { return weight_bytes_; }

  void forward(const StepBatch& batch, KVCache& cache, const Hooks* hooks, float* logits) override {
    const int n = static_cast<int>(batch.tokens.size());
    const int C = config_.d_model, M = config_.d_mlp, H = config_.n_head, hd = config_.head_dim;
    const size_t nc = static_cast<size_t>(n) * C;
    RunState& s = state_;
    s.x.resize(nc);
    s.ln.resize(nc);
    s.qkv.resize(nc * 3);
    s.att.resize(nc);
    s.attn.resize(nc);
    s.out.resize(nc);
    s.mlp.resize(static_cast<size_t>(n) * M);
    std::span<const RowInfo> rows(batch.rows);
    auto hook = [&](HookSite site, int layer, float* acts, int width) {
      if (hooks && hooks->any({site, layer})) hooks->run({site, layer}, rows, acts, width);
    };

    check_step(batch, config_);
    // Embeddings: x = embed_in[token] (positions enter through RoPE only)
    for (int r = 0; r < n; ++r) {
      const int tok = batch.tokens[r];
      embed_.copy_row(tok, s.x.data() + static_cast<size_t>(r) * C);
    }
    hook(HookSite::Embed, -1, s.x.data(), C);

    // A step that wants no logits may stop after block last_layer (capturing early-layer neurons).
    const int n_run = batch.last_layer >= 0 && batch.logit_rows.empty() ? std::min(batch.last_layer + 1, config_.n_layer)
                                                                        : config_.n_layer;
    const bool exact_gelu = config_.activation == "gelu";
    for (int l = 0; l < n_run; ++l) {
      const NeoxBlock& b = blocks_[static_cast<size_t>(l)];
      hook(HookSite::ResidPre, l, s.x.data(), C);
      // Attention: qkv [rows, q | k | v], RoPE on the first rotary_dims of each q and k head
      layer_norm(s.x.data(), n, C, b.ln1_w, b.ln1_b, config_.norm_eps, s.ln.data());
      linear(s.ln.data(), n, b.qkv_w, b.qkv_b.data(), s.qkv.data());
      float* qkv = s.qkv.data();
      const size_t ld = static_cast<size_t>(3) * C;
      rope_partial(qkv, ld, H, rows, hd, config_.rotary_dims, inv_freq_.data());
      rope_partial(qkv + C, ld, H, rows, hd, config_.rotary_dims, inv_freq_.data());
      attention(qkv, ld, qkv + C, qkv + 2 * C, ld, rows, cache, l, H, H, hd, s.att.data());
      linear(s.att.data(), n, b.dense_w, b.dense_b, s.attn.data());
      hook(HookSite::AttnOut, l, s.attn.data(), C);
      // MLP: parallel reads the block input x; sequential reads x + attn
      if (!config_.parallel_residual) {
        add_inplace(s.x.data(), s.attn.data(), nc);
        hook(HookSite::ResidMid, l, s.x.data(), C);
      }
      layer_norm(s.x.data(), n, C, b.ln2_w, b.ln2_b, config_.norm_eps, s.ln.data());
      linear(s.ln.data(), n, b.fc_w, b.fc_b, s.mlp.data());
      hook(HookSite::MlpPre, l, s.mlp.data(), M);
      if (exact_gelu)
        gelu_erf(s.mlp.data(), static_cast<size_t>(n) * M);
      else
        gelu_tanh(s.mlp.data(), static_cast<size_t>(n) * M);
      hook(HookSite::MlpPost, l, s.mlp.data(), M);
      linear(s.mlp.data(), n, b.out_w, b.out_b, s.out.data());
      hook(HookSite::MlpOut, l, s.out.data(), C);
      // parallel: x = (mlp_out + attn_out) + x, transformers' order of additions
      if (config_.parallel_residual) add_inplace(s.out.data(), s.attn.data(), nc);
      add_inplace(s.x.data(), s.out.data(), nc);
      hook(HookSite::ResidPost, l, s.x.data(), C);
    }

    if (n_run < config_.n_layer) return;
    layer_norm(s.x.data(), n, C, lnf_w_, lnf_b_, config_.norm_eps, s.ln.data());
    hook(HookSite::LnFinal, -1, s.ln.data(), C);
    if (!batch.logit_rows.empty()) linear_gathered(s.ln.data(), batch.logit_rows, lm_head_, s.last, logits);
  }

 private:
  ModelConfig config_;
  std::unique_ptr<ModelWeights> weights_;
  RowTable embed_;  // [V, C]
  std::vector<NeoxBlock> blocks_;
  const float* lnf_w_ = nullptr;  // [C]
  const float* lnf_b_ = nullptr;  // [C]
  Matrix lm_head_;                // [V, C]
  std::vector<float> inv_freq_;   // [rotary_dims / 2]
  size_t weight_bytes_ = 0;
  RunState state_;
};

}  // namespace

std::vector<HookSite> gpt_neox_hook_sites(const ModelConfig& config) {
  std::vector<HookSite> sites = {HookSite::Embed, HookSite::ResidPre, HookSite::AttnOut};
  if (!config.parallel_residual) sites.push_back(HookSite::ResidMid);
  sites.insert(sites.end(), {HookSite::MlpPre, HookSite::MlpPost, HookSite::MlpOut, HookSite::ResidPost,
                             HookSite::LnFinal});
  return sites;
}

std::unique_ptr<Model> load_gpt_neox(const ModelConfig& config,
                                     std::unique_ptr<ModelWeights> weights, WeightFormat format) {
  return std::make_unique<GptNeoxModel>(config, std::move(weights), format);
}

}  // namespace nt
