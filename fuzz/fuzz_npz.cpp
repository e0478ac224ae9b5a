// libFuzzer target: the .npy header reader (nt::parse_npy) and the .npz reader (nt::read_npz_bytes,
// libzip) on arbitrary bytes. Every input goes to both. An array that parses must hold exactly
// product(shape) values.
#include <cstdint>
#include <span>
#include <string>

#include "fuzz_common.h"
#include "sae/npy.h"
#include "sae/npz.h"

namespace {

using nt::fuzz::fail;

void check(const nt::NpyArray& a) {
  uint64_t count = 1;
  for (int64_t d : a.shape) {
    if (d < 0) fail("negative dimension accepted");
    count *= static_cast<uint64_t>(d);
  }
  if (count != a.data.size()) fail("value count differs from the shape's product");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  nt::fuzz::expect_only_nt_errors([&] { check(nt::parse_npy(bytes, "input.npy")); });
  nt::fuzz::expect_only_nt_errors([&] {
    for (const auto& [name, array] : nt::read_npz_bytes(bytes, "input.npz")) {
      if (name.empty()) fail("empty member name accepted");
      check(array);
    }
  });
  return 0;
}
