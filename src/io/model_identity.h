#pragma once
// What identifies a model in outputs (trace.json, steering results): its type and sizes, where it
// was loaded from, and a fingerprint of its weight files (hash of their safetensors headers and
// sizes), so a trace made with another model is recognised even when the folder is the same.
#include <nlohmann/json.hpp>
#include <string>

#include "io/model_config.h"

namespace nt {

struct ModelIdentity {
  std::string path;         // absolute folder
  std::string model_type;
  int n_layer = 0, d_model = 0, d_mlp = 0, vocab_size = 0, n_ctx = 0;
  std::string fingerprint;  // 16 hex digits

  nlohmann::json to_json() const;
  static ModelIdentity from_json(const nlohmann::json& j);  // throws nt::Error on a bad layout
  bool same_model(const ModelIdentity& other) const { return fingerprint == other.fingerprint; }
  std::string describe() const;  // "gpt2 2x64 (/path, fingerprint 1234...)"
};

ModelIdentity model_identity(const std::string& model_dir, const ModelConfig& config);

}  // namespace nt
