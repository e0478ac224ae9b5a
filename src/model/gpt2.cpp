#include "model/gpt2.h"

#include <algorithm>
#include <vector>

#include "model/kernels.h"
#include "util/error.h"

namespace nt {

namespace {

struct Gpt2Block {
  const float* ln1_w;   // [C]
  const float* ln1_b;   // [C]
  Matrix qkv_w;         // [C, 3C]   columns: q | k | v, head j = columns j*hd .. j*hd+hd-1 of each
  const float* qkv_b;   // [3C]
  Matrix proj_w;        // [C, C]
  const float* proj_b;  // [C]
  const float* ln2_w;   // [C]
  const float* ln2_b;   // [C]
  Matrix fc_w;          // [C, M]
  const float* fc_b;    // [M]
  Matrix out_w;         // [M, C]
  const float* out_b;   // [C]
};

// Activations of one step, resized to the step's row count (capacity is kept between steps).
struct RunState {
  std::vector<float> x;     // [rows, C]  residual stream
  std::vector<float> ln;    // [rows, C]  normalized input of a sub-layer
  std::vector<float> qkv;   // [rows, 3C]  q | k | v of each row (attention reads them in place)
  std::vector<float> att;   // [rows, C]  attention output before c_proj
  std::vector<float> out;   // [rows, C]  output of a sub-layer before the residual add (and the
                            //            position embeddings, before the first block)
  std::vector<float> mlp;   // [rows, M]
  std::vector<float> last;  // [logit rows, C]
};

class Gpt2Model : public Model {
 public:
  Gpt2Model(const ModelConfig& config, std::unique_ptr<ModelWeights> weights,
            WeightFormat format)
      : config_(config), weights_(std::move(weights)) {
    const int64_t C = config.d_model, M = config.d_mlp, V = config.vocab_size, P = config.n_ctx;
    ModelWeights& w = *weights_;
    // Matrices of linear layers, converted to `format` here, once; the float32 bytes they replace
    // are swapped for the stored bytes in weight_bytes_.
    size_t f32_bytes = 0, stored_bytes = 0;
    auto matrix = [&](const std::string& name, int64_t in, int64_t out, WeightLayout layout) {
      const float* p = w.get(name, layout == WeightLayout::InOut ? std::vector<int64_t>{in, out}
                                                                 : std::vector<int64_t>{out, in});
      Matrix m(p, static_cast<int>(in), static_cast<int>(out), layout, format);
      w.release(p);
      f32_bytes += m.f32_bytes();
      stored_bytes += m.bytes();
      return m;
    };
    wte_ = w.row_table("wte.weight", {V, C});
    wpe_ = w.row_table("wpe.weight", {P, C});
    for (int l = 0; l < config.n_layer; ++l) {
      const std::string p = "h." + std::to_string(l) + ".";
      blocks_.push_back(Gpt2Block{
          w.get(p + "ln_1.weight", {C}), w.get(p + "ln_1.bias", {C}),
          matrix(p + "attn.c_attn.weight", C, 3 * C, WeightLayout::InOut), w.get(p + "attn.c_attn.bias", {3 * C}),
          matrix(p + "attn.c_proj.weight", C, C, WeightLayout::InOut), w.get(p + "attn.c_proj.bias", {C}),
          w.get(p + "ln_2.weight", {C}), w.get(p + "ln_2.bias", {C}),
          matrix(p + "mlp.c_fc.weight", C, M, WeightLayout::InOut), w.get(p + "mlp.c_fc.bias", {M}),
          matrix(p + "mlp.c_proj.weight", M, C, WeightLayout::InOut), w.get(p + "mlp.c_proj.bias", {C})});
    }
    lnf_w_ = w.get("ln_f.weight", {C});
    lnf_b_ = w.get("ln_f.bias", {C});
    // The embedding lookups read rows from the file (wte_, wpe_); the LM head is its own converted
    // copy of wte (or of lm_head.weight when untied).
    const bool tied = config.tie_embeddings || !w.has("lm_head.weight");
    lm_head_ = matrix(tied ? "wte.weight" : "lm_head.weight", C, V, WeightLayout::OutIn);
    weight_bytes_ = w.bytes_used() - f32_bytes + stored_bytes;
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
    s.out.resize(nc);
    s.mlp.resize(static_cast<size_t>(n) * M);
    std::span<const RowInfo> rows(batch.rows);
    auto hook = [&](HookSite site, int layer, float* acts, int width) {
      if (hooks && hooks->any({site, layer})) hooks->run({site, layer}, rows, acts, width);
    };

    check_step(batch, config_);
    // Embeddings: x = wte[token] + wpe[pos]
    for (int r = 0; r < n; ++r) {
      const int tok = batch.tokens[r];
      const int p = batch.rows[r].pos;
      wte_.copy_row(tok, s.x.data() + static_cast<size_t>(r) * C);
      wpe_.copy_row(p, s.out.data() + static_cast<size_t>(r) * C);
    }
    hook(HookSite::Embed, -1, s.x.data(), C);
    hook(HookSite::PosEmbed, -1, s.out.data(), C);
    add_inplace(s.x.data(), s.out.data(), nc);

    // A step that wants no logits may stop after block last_layer (capturing early-layer neurons).
    const int n_run = batch.last_layer >= 0 && batch.logit_rows.empty() ? std::min(batch.last_layer + 1, config_.n_layer)
                                                                        : config_.n_layer;
    for (int l = 0; l < n_run; ++l) {
      const Gpt2Block& b = blocks_[static_cast<size_t>(l)];
      hook(HookSite::ResidPre, l, s.x.data(), C);
      // Attention
      layer_norm(s.x.data(), n, C, b.ln1_w, b.ln1_b, config_.norm_eps, s.ln.data());
      linear(s.ln.data(), n, b.qkv_w, b.qkv_b, s.qkv.data());
      const float* qkv = s.qkv.data();
      const size_t ld = static_cast<size_t>(3) * C;
      attention(qkv, ld, qkv + C, qkv + 2 * C, ld, rows, cache, l, H, H, hd, s.att.data());
      linear(s.att.data(), n, b.proj_w, b.proj_b, s.out.data());
      hook(HookSite::AttnOut, l, s.out.data(), C);
      add_inplace(s.x.data(), s.out.data(), nc);
      hook(HookSite::ResidMid, l, s.x.data(), C);
      // MLP
      layer_norm(s.x.data(), n, C, b.ln2_w, b.ln2_b, config_.norm_eps, s.ln.data());
      linear(s.ln.data(), n, b.fc_w, b.fc_b, s.mlp.data());
      hook(HookSite::MlpPre, l, s.mlp.data(), M);
      gelu_tanh(s.mlp.data(), static_cast<size_t>(n) * M);
      hook(HookSite::MlpPost, l, s.mlp.data(), M);
      linear(s.mlp.data(), n, b.out_w, b.out_b, s.out.data());
      hook(HookSite::MlpOut, l, s.out.data(), C);
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
  RowTable wte_;  // [V, C]
  RowTable wpe_;  // [P, C]
  std::vector<Gpt2Block> blocks_;
  const float* lnf_w_ = nullptr;
  const float* lnf_b_ = nullptr;
  Matrix lm_head_;  // [V, C]
  size_t weight_bytes_ = 0;
  RunState state_;
};

}  // namespace

std::vector<HookSite> gpt2_hook_sites(const ModelConfig&) {
  return {HookSite::Embed,  HookSite::PosEmbed, HookSite::ResidPre, HookSite::AttnOut,   HookSite::ResidMid,
          HookSite::MlpPre, HookSite::MlpPost,  HookSite::MlpOut,   HookSite::ResidPost, HookSite::LnFinal};
}

std::unique_ptr<Model> load_gpt2(const ModelConfig& config,
                                 std::unique_ptr<ModelWeights> weights, WeightFormat format) {
  return std::make_unique<Gpt2Model>(config, std::move(weights), format);
}

}  // namespace nt
