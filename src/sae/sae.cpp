// The Sae's construction (folding the normalization factor, packing the encoder), encoding and
// decoding.
#include "sae/sae.h"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "model/kernels.h"
#include "util/thread_pool.h"
#include "util/error.h"
#include "util/option_error.h"

namespace nt {

namespace {

void fold_scaling_factor(Sae::Weights& w, double s) {
  const float f = static_cast<float>(s);
  for (float& v : w.W_enc) v *= f;
  for (float& v : w.W_dec) v /= f;
  for (float& v : w.b_dec) v /= f;
}

void apply_scaling_factor(SaeConfig& c, Sae::Weights& w, const std::string& source,
                          const std::optional<double>& factor) {
  const bool needed = c.normalization == SaeNormalization::ExpectedAverageOnlyIn;
  if (needed && !factor)
    throw OptionError("sae.norm_scaling_factor",
                      source + ": normalize_activations 'expected_average_only_in' needs the release's norm scaling "
                               "factor, which cfg.json does not carry and no known release gives; give it");
  if (!needed && factor)
    throw OptionError("sae.norm_scaling_factor", source + ": a norm scaling factor was given, but the SAE's "
                                                          "normalize_activations is '" +
                                                          sae_normalization_name(c.normalization) + "'");
  if (!factor) return;
  if (!std::isfinite(*factor) || *factor <= 0)
    throw OptionError("sae.norm_scaling_factor", source + ": must be a positive number");
  fold_scaling_factor(w, *factor);
}

}  // namespace

Sae::Sae(SaeConfig config, std::string source, Weights w, const SaeLoadOptions& options)
    : config_(std::move(config)), source_(std::move(source)) {
  if (options.center_input) config_.center_input = *options.center_input;
  apply_scaling_factor(config_, w, source_, options.norm_scaling_factor);
  const int d_in = config_.d_in, d_sae = config_.d_sae;
  W_enc_ = Matrix(w.W_enc.data(), d_in, d_sae, WeightLayout::InOut, options.encoder_format);
  W_dec_ = std::move(w.W_dec);
  b_dec_ = std::move(w.b_dec);
  threshold_ = std::move(w.threshold);
  if (config_.architecture == SaeArchitecture::Gated) {
    b_gate_ = std::move(w.b_gate);
    b_mag_ = std::move(w.b_mag);
    exp_r_mag_.resize(d_sae);
    for (int i = 0; i < d_sae; ++i) exp_r_mag_[i] = std::exp(w.r_mag[i]);
  } else {
    b_enc_ = std::move(w.b_enc);
  }
  if (config_.architecture == SaeArchitecture::TopK && config_.rescale_acts_by_decoder_norm) {
    decoder_norm_.resize(d_sae);
    decoder_scale_.resize(d_sae);
    for (int i = 0; i < d_sae; ++i) {
      double ss = 0;
      for (int j = 0; j < d_in; ++j) ss += static_cast<double>(W_dec_[size_t(i) * d_in + j]) * W_dec_[size_t(i) * d_in + j];
      decoder_norm_[i] = static_cast<float>(std::sqrt(ss));
      decoder_scale_[i] = decoder_norm_[i] > 0 ? 1.0f / decoder_norm_[i] : 0.0f;
    }
  }
}

void Sae::activate(float* pre, float* act, std::vector<float>& scratch) const {
  const int n = config_.d_sae;
  switch (config_.architecture) {
    case SaeArchitecture::Standard:
      for (int i = 0; i < n; ++i) act[i] = pre[i] > 0.0f ? pre[i] : 0.0f;
      return;
    case SaeArchitecture::JumpReLU: {
      const float* t = threshold_.data();
      for (int i = 0; i < n; ++i) act[i] = (pre[i] > t[i] && pre[i] > 0.0f) ? pre[i] : 0.0f;
      return;
    }
    case SaeArchitecture::Gated:  // pre holds sae_in @ W_enc; it becomes the magnitude pre-activation
      for (int i = 0; i < n; ++i) {
        const bool open = pre[i] + b_gate_[i] > 0.0f;
        pre[i] = exp_r_mag_[i] * pre[i] + b_mag_[i];
        act[i] = open && pre[i] > 0.0f ? pre[i] : 0.0f;
      }
      return;
    case SaeArchitecture::TopK: {
      const int k = config_.k;
      scratch.resize(2 * static_cast<size_t>(n));
      float* ranked = scratch.data();
      float* order = ranked + n;
      for (int i = 0; i < n; ++i) {  // NaN ranks last: nth_element needs a strict weak order
        const float v = decoder_norm_.empty() ? pre[i] : pre[i] * decoder_norm_[i];
        ranked[i] = std::isnan(v) ? -std::numeric_limits<float>::infinity() : v;
      }
      std::copy(ranked, ranked + n, order);
      std::nth_element(order, order + (k - 1), order + n, std::greater<float>());
      const float kth = order[k - 1];
      int ties = k;
      for (int i = 0; i < n; ++i) ties -= ranked[i] > kth;
      for (int i = 0; i < n; ++i) {
        const bool keep = ranked[i] > kth || (ranked[i] == kth && ties-- > 0);
        act[i] = keep && ranked[i] > 0.0f ? ranked[i] : 0.0f;
      }
      return;
    }
  }
}

void Sae::encode(const float* x, int rows, SaeEncoding& out) const {
  const int d_in = config_.d_in, d_sae = config_.d_sae;
  const size_t acts = static_cast<size_t>(rows) * d_sae;
  out.rows = rows;
  out.pre.resize(acts);
  out.acts.resize(acts);
  out.norm_coeff.assign(rows, 1.0f);
  out.norm_shift.assign(rows, 0.0f);
  std::vector<float> sae_in(x, x + static_cast<size_t>(rows) * d_in);
  for (int r = 0; r < rows; ++r) {
    float* row = sae_in.data() + static_cast<size_t>(r) * d_in;
    if (config_.center_input || config_.normalization == SaeNormalization::LayerNorm) {
      double sum = 0.0;
      for (int j = 0; j < d_in; ++j) sum += row[j];
      out.norm_shift[r] = static_cast<float>(sum / d_in);
      for (int j = 0; j < d_in; ++j) row[j] -= out.norm_shift[r];
    }
    if (config_.normalization == SaeNormalization::LayerNorm) {
      double ss = 0.0;
      for (int j = 0; j < d_in; ++j) ss += static_cast<double>(row[j]) * row[j];
      const float std_dev = static_cast<float>(std::sqrt(ss / std::max(1, d_in - 1)));
      out.norm_coeff[r] = std_dev > 0.0f ? 1.0f / std_dev : 1.0f;
      const float in_scale = 1.0f / (std_dev + 1e-5f);
      for (int j = 0; j < d_in; ++j) row[j] *= in_scale;
    }
    if (config_.normalization == SaeNormalization::ConstantNormRescale) {
      float ss = 0.0f;
      for (int j = 0; j < d_in; ++j) ss += row[j] * row[j];
      if (ss > 0.0f) out.norm_coeff[r] = std::sqrt(static_cast<float>(d_in)) / std::sqrt(ss);  // a zero row stays 1
      for (int j = 0; j < d_in; ++j) row[j] *= out.norm_coeff[r];
    }
    if (config_.apply_b_dec_to_input)
      for (int j = 0; j < d_in; ++j) row[j] -= b_dec_[j];
  }
  linear(sae_in.data(), rows, W_enc_, b_enc_.empty() ? nullptr : b_enc_.data(), out.pre.data());
  // Rows are independent; TopK's selection is worth spreading over the pool's threads.
  thread_pool().parallel_for(static_cast<size_t>(rows), 1, [&](size_t begin, size_t end) {
    std::vector<float> scratch;
    for (size_t r = begin; r < end; ++r) activate(out.pre.data() + r * d_sae, out.acts.data() + r * d_sae, scratch);
  });
}

void Sae::decode(const float* acts, int rows, const float* norm_coeff, float* recons, const float* norm_shift) const {
  const int d_in = config_.d_in, d_sae = config_.d_sae;
  for (int r = 0; r < rows; ++r) {
    const float* f = acts + static_cast<size_t>(r) * d_sae;
    float* out = recons + static_cast<size_t>(r) * d_in;
    std::copy(b_dec_.begin(), b_dec_.end(), out);
    for (int i = 0; i < d_sae; ++i) {
      if (f[i] == 0.0f) continue;
      const float a = f[i] * decoder_scale(i);
      const float* w = decoder_row(i);
      for (int j = 0; j < d_in; ++j) out[j] += a * w[j];
    }
    if (norm_coeff && norm_coeff[r] != 1.0f)
      for (int j = 0; j < d_in; ++j) out[j] /= norm_coeff[r];
    if (norm_shift && norm_shift[r] != 0.0f)
      for (int j = 0; j < d_in; ++j) out[j] += norm_shift[r];
  }
}

HookPoint Sae::hook_point(const ModelConfig& model) const {
  const std::string hook = config_.hook_name;
  const std::string who = source_ + ": SAE hook '" + hook + "'";
  HookPoint point{HookSite::ResidPost, -1};
  try {
    const HookName parsed = parse_hook_name(hook);
    point = {parsed.site, parsed.layer};
    check_hook_point(model, point);  // also refuses "blocks.*.X": an SAE reads one layer
  } catch (const Error& e) {
    throw Error(who + " does not fit model type '" + model.model_type + "': " + e.what());
  }
  const int width = site_width(point.site, model);
  if (width != config_.d_in)
    throw Error(who + ": SAE d_in = " + std::to_string(config_.d_in) + " but model type '" + model.model_type +
                "' has width " + std::to_string(width) + " at '" + hook_name(point) + "'");
  return point;
}

}  // namespace nt
