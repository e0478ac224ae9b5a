// libFuzzer target: the steering spec parsers nt::parse_neurons, nt::parse_mode, nt::parse_where.
//
// Each parser gets the whole input, and the input's lines go to them in turn (line 1 neurons,
// line 2 mode, line 3 where), so a seed like "L1N3,0:5\nscale:0.5\ngenerated" exercises a full
// spec. Accepted neurons must print back (neurons_text) to a spec that parses to the same list,
// an accepted mode must carry a finite value, and validate() against a small model must either
// accept or throw nt::Error.
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.h"
#include "steer/intervention.h"

namespace {

using nt::fuzz::fail;

nt::ModelConfig small_model() {
  nt::ModelConfig c;
  c.n_layer = 2;
  c.d_model = 64;
  c.n_head = 4;
  c.n_kv_head = 4;
  c.head_dim = 16;
  c.d_mlp = 256;
  c.vocab_size = 50257;
  c.n_ctx = 128;
  return c;
}

void exercise(const std::string& neurons, const std::string& mode, const std::string& where) {
  nt::Intervention iv;
  nt::fuzz::expect_only_nt_errors([&] {
    iv.neurons = nt::parse_neurons(neurons);
    if (iv.neurons.empty()) fail("parse_neurons returned no neurons");
    for (const auto& n : iv.neurons)
      if (n.layer < 0 || n.index < 0) fail("negative layer or index accepted");
    const std::string text = nt::neurons_text(iv.neurons);
    if (nt::parse_neurons(text) != iv.neurons) fail("neurons_text does not parse back: " + text);
  });
  nt::fuzz::expect_only_nt_errors([&] {
    nt::parse_mode(mode, iv);
    if (!std::isfinite(iv.value)) fail("non-finite intervention value accepted");
  });
  nt::fuzz::expect_only_nt_errors([&] { iv.where = nt::parse_where(where); });
  nt::fuzz::expect_only_nt_errors([&] {
    (void)iv.describe();
    if (!iv.neurons.empty()) nt::validate(iv, small_model());
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  exercise(in, in, in);
  std::vector<std::string> lines;
  size_t start = 0;
  while (lines.size() < 3) {
    const size_t nl = in.find('\n', start);
    lines.push_back(in.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  lines.resize(3);
  exercise(lines[0], lines[1], lines[2]);
  return 0;
}
