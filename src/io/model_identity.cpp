#include "io/model_identity.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "util/error.h"
#include "util/message_text.h"

namespace nt {

namespace {

uint64_t fnv1a(uint64_t h, const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

ModelIdentity model_identity(const std::string& model_dir, const ModelConfig& config) {
  namespace fs = std::filesystem;
  ModelIdentity id;
  std::error_code ec;
  id.path = fs::weakly_canonical(fs::path(model_dir), ec).string();
  if (ec) id.path = model_dir;
  id.model_type = config.model_type;
  id.n_layer = config.n_layer;
  id.d_model = config.d_model;
  id.d_mlp = config.d_mlp;
  id.vocab_size = config.vocab_size;
  id.n_ctx = config.n_ctx;
  uint64_t h = 0xcbf29ce484222325ULL;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(model_dir, ec))
    if (e.path().extension() == ".safetensors") files.push_back(e.path());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    uint64_t n = 0;
    in.read(reinterpret_cast<char*>(&n), 8);
    const uint64_t size = fs::file_size(f, ec);
    h = fnv1a(h, &size, sizeof size);
    if (in && n < (100u << 20)) {
      std::string header(n, '\0');
      in.read(header.data(), static_cast<std::streamsize>(n));
      h = fnv1a(h, header.data(), header.size());
    }
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, h);
  id.fingerprint = buf;
  return id;
}

nlohmann::json ModelIdentity::to_json() const {
  return {{"path", path}, {"model_type", model_type}, {"n_layer", n_layer}, {"d_model", d_model},
          {"d_mlp", d_mlp}, {"vocab_size", vocab_size}, {"n_ctx", n_ctx}, {"fingerprint", fingerprint}};
}

ModelIdentity ModelIdentity::from_json(const nlohmann::json& j) {
  ModelIdentity id;
  try {
    id.path = j.at("path").get<std::string>();
    id.model_type = j.at("model_type").get<std::string>();
    id.n_layer = j.at("n_layer").get<int>();
    id.d_model = j.at("d_model").get<int>();
    id.d_mlp = j.at("d_mlp").get<int>();
    id.vocab_size = j.at("vocab_size").get<int>();
    id.n_ctx = j.at("n_ctx").get<int>();
    id.fingerprint = j.at("fingerprint").get<std::string>();
  } catch (const nlohmann::json::exception& e) {
    throw Error("model identity: " + escape_for_message(e.what()));
  }
  return id;
}

std::string ModelIdentity::describe() const {
  return model_type + " " + std::to_string(n_layer) + "x" + std::to_string(d_model) + " at " + path +
         " (fingerprint " + fingerprint + ")";
}

}  // namespace nt
