// libFuzzer target: nt::parse_sae_config on an arbitrary SAELens cfg.json. A config that parses
// must describe an SAE the encoder can run: positive sizes, a hook name, and for topk 1 <= k <= d_sae.
#include <cstdint>
#include <string>

#include "fuzz_common.h"
#include "sae/sae_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using nt::fuzz::fail;
  const std::string text(reinterpret_cast<const char*>(data), size);
  nt::fuzz::expect_only_nt_errors([&] {
    const nt::SaeConfig c = nt::parse_sae_config(text, "cfg.json");
    if (c.d_in <= 0 || c.d_sae <= 0) fail("non-positive size accepted");
    if (c.hook_name.empty()) fail("empty hook name accepted");
    if (c.architecture == nt::SaeArchitecture::TopK && (c.k < 1 || c.k > c.d_sae)) fail("topk k out of range accepted");
  });
  return 0;
}
