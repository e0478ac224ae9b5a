#include "atlas/logit_effects.h"

#include <algorithm>
#include <numeric>

#include "io/model_weights.h"
#include "sae/sae.h"
#include "util/thread_pool.h"

namespace nt {

namespace {

struct Names {
  std::string out;    // with {} for the layer
  bool out_is_in_out; // [d_mlp, d_model] (GPT-2 Conv1D) rather than [d_model, d_mlp]
  std::string gain, unembed;
};

bool names_for(const ModelConfig& c, Names& n) {
  switch (c.arch) {
    case Arch::Gpt2: n = {"h.{}.mlp.c_proj.weight", true, "ln_f.weight", c.tie_embeddings ? "wte.weight" : "lm_head.weight"}; return true;
    case Arch::Llama:
      n = {"model.layers.{}.mlp.down_proj.weight", false, "model.norm.weight",
           c.tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight"};
      return true;
    case Arch::GptNeox:
      n = {"gpt_neox.layers.{}.mlp.dense_4h_to_h.weight", false, "gpt_neox.final_layer_norm.weight",
           c.tie_embeddings ? "gpt_neox.embed_in.weight" : "embed_out.weight"};
      return true;
    case Arch::Gemma2: return false;
  }
  return false;
}

std::string layer_name(const std::string& pattern, int layer) {
  std::string s = pattern;
  s.replace(s.find("{}"), 2, std::to_string(layer));
  return s;
}

bool residual_width(HookSite s) {
  return s == HookSite::ResidPre || s == HookSite::ResidMid || s == HookSite::ResidPost || s == HookSite::AttnOut ||
         s == HookSite::MlpOut;
}

// The `count` largest and smallest entries of `logits`.
LogitEffect extremes(const std::vector<float>& logits, int count) {
  std::vector<int> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  const size_t k = std::min(order.size(), static_cast<size_t>(count));
  LogitEffect e;
  auto by = [&](bool up) {
    std::partial_sort(order.begin(), order.begin() + static_cast<long>(k), order.end(), [&](int a, int b) {
      const float x = logits[static_cast<size_t>(a)], y = logits[static_cast<size_t>(b)];
      return up ? (x != y ? x > y : a < b) : (x != y ? x < y : a < b);
    });
    return std::vector<int>(order.begin(), order.begin() + static_cast<long>(k));
  };
  e.top_ids = by(true);
  e.bottom_ids = by(false);
  for (int id : e.top_ids) e.top_values.push_back(logits[static_cast<size_t>(id)]);
  for (int id : e.bottom_ids) e.bottom_values.push_back(logits[static_cast<size_t>(id)]);
  return e;
}

// The `count` extremes of dir · W_U ([C] . [V, C]).
LogitEffect direction_effect(const std::vector<float>& dir, const float* wu, size_t V, int count) {
  const size_t C = dir.size();
  std::vector<float> logits(V);
  for (size_t v = 0; v < V; ++v) {
    float acc = 0;
    for (size_t d = 0; d < C; ++d) acc += dir[d] * wu[v * C + d];
    logits[v] = acc;
  }
  return extremes(logits, count);
}

// An SAE latent f at a residual-width hook: (scale_f W_dec[f] ⊙ g) · W_U, what one unit of the
// latent adds to the residual stream (decoder_scale: 1, or 1 / ||W_dec[f]|| for TopK SAEs that
// rescale by the decoder norm).
void sae_effects(const NeuronLayout& layout, int s, const float* gain, const float* wu, const ModelConfig& c, int count,
                 std::vector<LogitEffect>& out) {
  const TraceSite& site = layout.sites[static_cast<size_t>(s)];
  const size_t C = static_cast<size_t>(c.d_model), V = static_cast<size_t>(c.vocab_size);
  thread_pool().parallel_for(static_cast<size_t>(site.sae->d_sae()), 8, [&](size_t b, size_t e) {
    std::vector<float> dir(C);
    for (size_t f = b; f < e; ++f) {
      const float* row = site.sae->decoder_row(static_cast<int>(f));
      const float scale = site.sae->decoder_scale(static_cast<int>(f));
      for (size_t d = 0; d < C; ++d) dir[d] = gain[d] * scale * row[d];
      out[layout.flat({s, site.layer, static_cast<int>(f)})] = direction_effect(dir, wu, V, count);
    }
  });
}

}  // namespace

std::vector<LogitEffect> logit_effects(const std::string& model_dir, const ModelConfig& c, const NeuronLayout& layout,
                                       int count) {
  std::vector<LogitEffect> out(layout.total);
  Names names;
  if (!names_for(c, names)) return out;
  ModelWeights w(model_dir);
  const size_t C = static_cast<size_t>(c.d_model), M = static_cast<size_t>(c.d_mlp), V = static_cast<size_t>(c.vocab_size);
  const float* gain = w.get(names.gain, {c.d_model});
  const float* wu = w.get(names.unembed, {c.vocab_size, c.d_model});  // [V, C]
  for (size_t s = 0; s < layout.sites.size(); ++s) {
    const HookSite site = layout.sites[s].hook;
    if (layout.sites[s].is_sae()) {
      if (layout.sites[s].is_features() && residual_width(site)) sae_effects(layout, static_cast<int>(s), gain, wu, c, count, out);
      continue;
    }
    if (site != HookSite::MlpPost && !residual_width(site)) continue;
    for (int l = 0; l < c.n_layer; ++l) {
      if (site != HookSite::MlpPost && l > 0) {  // a dimension's effect is the same at every layer
        for (size_t i = 0; i < C; ++i)
          out[layout.flat({static_cast<int>(s), l, static_cast<int>(i)})] = out[layout.flat({static_cast<int>(s), 0, static_cast<int>(i)})];
        continue;
      }
      const float* wo = site == HookSite::MlpPost
                            ? w.get(layer_name(names.out, l), names.out_is_in_out ? std::vector<int64_t>{c.d_mlp, c.d_model}
                                                                                  : std::vector<int64_t>{c.d_model, c.d_mlp})
                            : nullptr;
      const size_t width = site == HookSite::MlpPost ? M : C;
      thread_pool().parallel_for(width, 8, [&](size_t b, size_t e) {
        std::vector<float> dir(C);
        for (size_t n = b; n < e; ++n) {
          for (size_t d = 0; d < C; ++d)
            dir[d] = gain[d] * (wo ? (names.out_is_in_out ? wo[n * C + d] : wo[d * M + n]) : static_cast<float>(d == n));
          out[layout.flat({static_cast<int>(s), l, static_cast<int>(n)})] = direction_effect(dir, wu, V, count);
        }
      });
    }
  }
  return out;
}

}  // namespace nt
