// libFuzzer target: nt::load_model_config on an arbitrary config.json.
//
// The input is written as config.json in a per-process folder. A config that loads must describe
// a model the rest of neurontrace can build: positive sizes, a head width that divides evenly,
// key/value heads that divide the heads, an even head width for RoPE, a positive epsilon.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.h"
#include "io/model_config.h"

namespace {

using nt::fuzz::fail;

void check(const nt::ModelConfig& c) {
  if (c.n_layer <= 0 || c.d_model <= 0 || c.n_head <= 0 || c.vocab_size <= 0 || c.d_mlp <= 0)
    fail("non-positive size accepted");
  if (c.head_dim <= 0) fail("non-positive head_dim accepted");
  if (c.n_kv_head <= 0 || c.n_head % c.n_kv_head != 0) fail("n_kv_head does not divide n_head");
  if (c.n_ctx < 0) fail("negative n_ctx accepted");
  if (!(c.norm_eps > 0)) fail("non-positive norm_eps accepted");
  if (c.arch == nt::Arch::Gpt2) {
    if (static_cast<int64_t>(c.head_dim) * c.n_head != c.d_model) fail("GPT-2 head_dim * n_head != n_embd");
    if (c.n_ctx <= 0) fail("GPT-2 without a context length accepted");
  } else {
    if (c.head_dim % 2 != 0) fail("odd head_dim accepted for RoPE");
    if (!(c.rope_theta > 0)) fail("non-positive rope_theta accepted");
    if (!(c.rope_scaling.factor > 0)) fail("non-positive rope scaling factor accepted");
    if (c.rope_scaling.type == nt::RopeScalingType::Llama3 && c.rope_scaling.original_max_position_embeddings <= 0)
      fail("non-positive original_max_position_embeddings accepted");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static nt::fuzz::ScratchDir dir("model_config");
  static const std::string path = dir.file("config.json");
  nt::fuzz::write_bytes(path, std::string_view(reinterpret_cast<const char*>(data), size));
  nt::fuzz::expect_only_nt_errors([&] { check(nt::load_model_config(dir.path())); });
  return 0;
}
