#pragma once
// A sparse autoencoder (SAE) over one hook point's activations, loaded from
//   a SAELens folder: cfg.json (sae_config.h) + sae_weights.safetensors [+ sparsity.safetensors]
//     W_enc [d_in, d_sae], b_enc [d_sae], W_dec [d_sae, d_in], b_dec [d_in],
//     threshold [d_sae] (jumprelu), b_gate / b_mag / r_mag [d_sae] instead of b_enc (gated);
//   a Gemma Scope params.npz (npz.h; W_* or Gemma Scope 2's w_* keys): jumprelu,
//     apply_b_dec_to_input false, no normalization, the hook from the path (".../<release>-res/
//     layer_L/..." -> blocks.L.hook_resid_post; "-mlp" -> blocks.L.hook_mlp_out) unless given.
// and computing what SAELens 6.x computes (x: [rows, d_in] at the hook):
//   sae_in = norm_in(x) - b_dec (b_dec only if apply_b_dec_to_input)
//   pre    = sae_in @ W_enc + b_enc                             hook_sae_acts_pre
//   f      = standard: relu(pre)                                 hook_sae_acts_post
//            jumprelu: pre where pre > threshold (strict) and pre > 0, else 0
//            topk:     the k largest of pre (* ||W_dec[i]|| with rescale_acts_by_decoder_norm),
//                      relu applied, the rest 0 (ties: lowest index first)
//            gated:    (sae_in @ W_enc + b_gate > 0) * relu(exp(r_mag) * (sae_in @ W_enc) + b_mag),
//                      pre being the magnitude path's pre-activation
//   recons = norm_out(f' @ W_dec + b_dec), f' = f / ||W_dec[i]|| with rescale, else f
// Normalization: expected_average_only_in multiplies x by a scaling factor that lives in SAELens'
// release list, not in cfg.json; it is folded into the weights at load (W_enc * s, W_dec / s,
// b_dec / s, as SAELens' fold_activation_norm_scaling_factor) and must be given
// (SaeLoadOptions::norm_scaling_factor) or loading is refused. constant_norm_rescale scales each row
// to norm sqrt(d_in) on the way in (coefficient c = sqrt(d_in) / ||x||) and divides by c on the way out.
// layer_norm (OpenAI's TopK SAEs) centres each row (mean mu), divides it by (std + 1e-5), std with
// Bessel's correction as torch.std, and maps the reconstruction back as y * std + mu.
// Centred input (SaeConfig::center_input: SAEs trained on TransformerLens' center_writing_weights
// model, whose residual stream and block outputs are the Hugging Face ones minus their mean over
// d_model) subtracts each row's mean before anything else; the reconstruction gets it back, so
// x - recons is the SAE's error in either space.
//
// The encoder is a packed Matrix (model/weight_matrix.h: d_sae outputs over d_in inputs) in f32 or
// bf16, multiplied with the model's kernels (model/kernels.h linear()).
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "hooks/hook_point.h"
#include "io/model_config.h"
#include "model/weight_matrix.h"
#include "sae/sae_config.h"

namespace nt {

struct SaeLoadOptions {
  // The release's norm_scaling_factor, for normalize_activations expected_average_only_in.
  std::optional<double> norm_scaling_factor;
  // The hook, when the files do not say it (Gemma Scope) or to override what they say.
  std::string hook_name;
  // Centre the input over d_in (see above); unset: as cfg.json says (SaeConfig::center_input).
  std::optional<bool> center_input;
  // Precision of the encoder matrix (f32, or bf16 for half the bytes per encode).
  WeightFormat encoder_format = WeightFormat::F32;
};

// One encode's results, row-major.
struct SaeEncoding {
  int rows = 0;
  std::vector<float> pre;         // [rows, d_sae] hook_sae_acts_pre
  std::vector<float> acts;        // [rows, d_sae] hook_sae_acts_post
  // [rows] how norm_out maps a reconstruction y back: y / norm_coeff + norm_shift (1 and 0 without
  // normalization or centring). A change d of the reconstruction changes the output by d / norm_coeff.
  std::vector<float> norm_coeff;
  std::vector<float> norm_shift;
};

class Sae {
 public:
  // Loads a SAELens folder (or its cfg.json), a params.npz, or a folder holding params.npz.
  // Throws nt::Error with one line naming the file: missing files, malformed cfg.json / npz / npy,
  // unsupported settings, tensors missing or of the wrong shape, NaN or infinite weights.
  static std::shared_ptr<const Sae> load(const std::string& path, const SaeLoadOptions& options = {});

  const SaeConfig& config() const { return config_; }
  const std::string& source() const { return source_; }  // the folder or file it was loaded from
  int d_in() const { return config_.d_in; }
  int d_sae() const { return config_.d_sae; }
  // log10 of each latent's firing frequency from sparsity.safetensors; empty when absent.
  const std::vector<float>& log10_density() const { return log10_density_; }

  void encode(const float* x, int rows, SaeEncoding& out) const;
  // recons[rows, d_in] from acts[rows, d_sae]; norm_coeff and norm_shift [rows] from encode(), or
  // null for 1 and 0.
  void decode(const float* acts, int rows, const float* norm_coeff, float* recons,
              const float* norm_shift = nullptr) const;
  // What one unit of latent i adds to the reconstruction before norm_out is
  // decoder_scale(i) * decoder_row(i): W_dec[i] as stored ([d_in]), scaled by 1 / ||W_dec[i]|| with
  // rescale_acts_by_decoder_norm (else 1).
  const float* decoder_row(int latent) const { return W_dec_.data() + static_cast<size_t>(latent) * config_.d_in; }
  float decoder_scale(int latent) const { return decoder_scale_.empty() ? 1.0f : decoder_scale_[latent]; }

  // The hook point this SAE reads in `model`. Throws nt::Error naming the SAE's hook and the model
  // when the model does not fire that hook, or when d_in differs from the hook's width.
  HookPoint hook_point(const ModelConfig& model) const;

  struct Weights {
    std::vector<float> W_enc, b_enc, W_dec, b_dec, threshold, b_gate, b_mag, r_mag;
  };
  Sae(SaeConfig config, std::string source, Weights weights, const SaeLoadOptions& options);
  void set_log10_density(std::vector<float> v) { log10_density_ = std::move(v); }

 private:
  void activate(float* pre_row, float* act_row, std::vector<float>& scratch) const;

  SaeConfig config_;
  std::string source_;
  Matrix W_enc_;                     // d_sae outputs over d_in inputs
  std::vector<float> b_enc_;         // [d_sae] (zeros for gated)
  std::vector<float> W_dec_;         // [d_sae, d_in]
  std::vector<float> b_dec_;         // [d_in]
  std::vector<float> threshold_;     // [d_sae] jumprelu
  std::vector<float> b_gate_, b_mag_, exp_r_mag_;  // [d_sae] gated
  std::vector<float> decoder_norm_;  // [d_sae] topk with rescale
  std::vector<float> decoder_scale_; // [d_sae] 1 / decoder_norm_
  std::vector<float> log10_density_;
};

}  // namespace nt
