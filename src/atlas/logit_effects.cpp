#include "atlas/logit_effects.h"

#include <algorithm>
#include <numeric>

#include "io/model_weights.h"
#include "model/kernels.h"
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

// The `count` largest and smallest of logits[0 .. V).
LogitEffect extremes(const float* logits, size_t V, int count) {
  std::vector<int> order(V);
  std::iota(order.begin(), order.end(), 0);
  const size_t k = std::min(V, static_cast<size_t>(count));
  LogitEffect e;
  auto by = [&](bool up) {
    std::partial_sort(order.begin(), order.begin() + static_cast<long>(k), order.end(), [&](int a, int b) {
      const float x = logits[a], y = logits[b];
      return up ? (x != y ? x > y : a < b) : (x != y ? x < y : a < b);
    });
    return std::vector<int>(order.begin(), order.begin() + static_cast<long>(k));
  };
  e.top_ids = by(true);
  e.bottom_ids = by(false);
  for (int id : e.top_ids) e.top_values.push_back(logits[id]);
  for (int id : e.bottom_ids) e.bottom_values.push_back(logits[id]);
  return e;
}

// Directions in the residual stream ([C] each, the final norm's gain folded in) and the units they
// belong to; their effects are computed together, through the forward pass's matrix product.
struct Directions {
  std::vector<float> rows;    // [units.size(), C]
  std::vector<size_t> units;  // flat unit index of each row
};

// out[unit] = the `count` extremes of direction · W_U, for every direction: kChunk directions at a
// time through the kernels' product with the unembedding (logits [kChunk, V]), then each row's
// extremes in parallel. (GPT-2 small's 36,864 MLP neurons: 1.4e12 multiply-adds.)
void add_effects(const Directions& dirs, const Matrix& unembed, int count, std::vector<LogitEffect>& out) {
  constexpr size_t kChunk = 128;
  const size_t C = static_cast<size_t>(unembed.in()), V = static_cast<size_t>(unembed.out());
  std::vector<float> logits;
  for (size_t b = 0; b < dirs.units.size(); b += kChunk) {
    const size_t n = std::min(kChunk, dirs.units.size() - b);
    logits.resize(n * V);
    linear(dirs.rows.data() + b * C, static_cast<int>(n), unembed, nullptr, logits.data());
    thread_pool().parallel_for(n, 1, [&](size_t i0, size_t i1) {
      for (size_t i = i0; i < i1; ++i) out[dirs.units[b + i]] = extremes(logits.data() + i * V, V, count);
    });
  }
}

// The directions of a site's units at `layer` (site index s): an MLP neuron's W_out row, a residual
// dimension's unit vector, an SAE latent's scale_f W_dec[f] (decoder_scale: 1, or 1 / ||W_dec[f]||
// for TopK SAEs that rescale by the decoder norm) — each times the gain.
Directions site_directions(const NeuronLayout& layout, int s, int layer, const float* wo, const Names& names,
                           const float* gain, const ModelConfig& c) {
  const TraceSite& site = layout.sites[static_cast<size_t>(s)];
  const size_t C = static_cast<size_t>(c.d_model), M = static_cast<size_t>(c.d_mlp);
  const size_t width = site.is_sae() ? static_cast<size_t>(site.sae->d_sae()) : site.hook == HookSite::MlpPost ? M : C;
  Directions dirs;
  dirs.rows.assign(width * C, 0.0f);
  for (size_t n = 0; n < width; ++n) {
    float* dir = dirs.rows.data() + n * C;
    if (site.is_sae()) {
      const float* row = site.sae->decoder_row(static_cast<int>(n));
      const float scale = site.sae->decoder_scale(static_cast<int>(n));
      for (size_t d = 0; d < C; ++d) dir[d] = gain[d] * scale * row[d];
    } else if (wo) {
      for (size_t d = 0; d < C; ++d) dir[d] = gain[d] * (names.out_is_in_out ? wo[n * C + d] : wo[d * M + n]);
    } else {
      dir[n] = gain[n];
    }
    dirs.units.push_back(layout.flat({s, layer, static_cast<int>(n)}));
  }
  return dirs;
}

}  // namespace

std::vector<LogitEffect> logit_effects(const std::string& model_dir, const ModelConfig& c, const NeuronLayout& layout,
                                       int count) {
  std::vector<LogitEffect> out(layout.total);
  Names names;
  if (!names_for(c, names)) return out;
  ModelWeights w(model_dir);
  const float* gain = w.get(names.gain, {c.d_model});
  const Matrix unembed(w.get(names.unembed, {c.vocab_size, c.d_model}), c.d_model, c.vocab_size, WeightLayout::OutIn);
  for (size_t s = 0; s < layout.sites.size(); ++s) {
    const TraceSite& site = layout.sites[s];
    const int si = static_cast<int>(s);
    if (site.is_sae()) {
      if (site.is_features() && residual_width(site.hook))
        add_effects(site_directions(layout, si, site.layer, nullptr, names, gain, c), unembed, count, out);
      continue;
    }
    if (site.hook != HookSite::MlpPost && !residual_width(site.hook)) continue;
    for (int l = 0; l < c.n_layer; ++l) {
      if (site.hook != HookSite::MlpPost && l > 0) {  // a dimension's effect is the same at every layer
        for (int i = 0; i < c.d_model; ++i) out[layout.flat({si, l, i})] = out[layout.flat({si, 0, i})];
        continue;
      }
      const float* wo = site.hook == HookSite::MlpPost
                            ? w.get(layer_name(names.out, l), names.out_is_in_out ? std::vector<int64_t>{c.d_mlp, c.d_model}
                                                                                  : std::vector<int64_t>{c.d_model, c.d_mlp})
                            : nullptr;
      add_effects(site_directions(layout, si, l, wo, names, gain, c), unembed, count, out);
    }
  }
  return out;
}

}  // namespace nt
