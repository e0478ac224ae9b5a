// make_random_model: writes a GPT-2-shaped Hugging Face model folder with seeded random weights
// (see src/io/random_model.h). A folder that already holds the same model is left as it is.
//
//   make_random_model --out DIR [--layers 12] [--width 768] [--heads 12] [--mlp 3072]
//                     [--vocab 50257] [--ctx 1024] [--seed 0] [--tokenizer DIR]
//   make_random_model --out DIR --arch pythia-160m|gemma2-2b [--seed 0]   (random_family_model.h)
//
// Errors: one line on stderr, exit status 1.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>

#include "io/random_family_model.h"
#include "io/random_model.h"
#include "util/error.h"

namespace {

const char* kUsage =
    "usage: make_random_model --out DIR [--layers N] [--width N] [--heads N] [--mlp N] [--vocab N]\n"
    "                         [--ctx N] [--seed N] [--tokenizer DIR]\n"
    "Writes config.json, model.safetensors (random F32 weights), vocab.json and merges.txt to DIR.\n"
    "Defaults: GPT-2 small (12 layers, 768 wide, 12 heads, MLP 3072, vocab 50257, context 1024),\n"
    "seed 0, tokenizer from ../shared/fixtures/tokenizers/gpt2 next to the source tree.\n"
    "--arch pythia-160m|gemma2-2b writes that shape instead (config.json, model.safetensors).\n";

long long parse_number(const std::string& flag, const std::string& text, long long lo, long long hi) {
  size_t used = 0;
  long long v = 0;
  try {
    v = std::stoll(text, &used, 10);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || v < lo || v > hi)
    throw nt::Error(flag + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                    "], got '" + text + "'");
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    nt::RandomGpt2Spec spec;
    std::string out;
    std::string tokenizer = nt::default_random_gpt2_tokenizer_dir();
    std::string arch;
    for (int i = 1; i < argc; ++i) {
      const std::string flag = argv[i];
      if (flag == "-h" || flag == "--help") {
        std::fputs(kUsage, stdout);
        return 0;
      }
      if (i + 1 >= argc)
        throw nt::Error(flag.rfind("--", 0) == 0 ? flag + ": missing value"
                                                 : "unexpected argument '" + flag + "'");
      const std::string value = argv[++i];
      constexpr long long kMaxDim = 1 << 24;
      if (flag == "--out")
        out = value;
      else if (flag == "--arch")
        arch = value;
      else if (flag == "--tokenizer")
        tokenizer = value;
      else if (flag == "--layers")
        spec.layers = static_cast<int>(parse_number(flag, value, 1, 4096));
      else if (flag == "--width")
        spec.width = static_cast<int>(parse_number(flag, value, 1, kMaxDim));
      else if (flag == "--heads")
        spec.heads = static_cast<int>(parse_number(flag, value, 1, kMaxDim));
      else if (flag == "--mlp")
        spec.mlp = static_cast<int>(parse_number(flag, value, 1, kMaxDim));
      else if (flag == "--vocab")
        spec.vocab = static_cast<int>(parse_number(flag, value, 1, kMaxDim));
      else if (flag == "--ctx")
        spec.ctx = static_cast<int>(parse_number(flag, value, 1, kMaxDim));
      else if (flag == "--seed")
        spec.seed = static_cast<uint64_t>(parse_number(flag, value, 0, 0x7FFFFFFFFFFFFFFFLL));
      else
        throw nt::Error("unknown option '" + flag + "' (see --help)");
    }
    if (out.empty()) throw nt::Error("--out DIR is required (see --help)");
    if (!arch.empty()) {
      const auto t0 = std::chrono::steady_clock::now();
      nt::write_random_family(out, arch, spec.seed);
      std::fprintf(stderr, "make_random_model: %s ready in %s (%.1f s)\n", arch.c_str(), out.c_str(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      return 0;
    }
    nt::validate(spec);
    if (nt::random_gpt2_is_current(out, spec)) {
      std::fprintf(stderr, "make_random_model: %s is up to date\n", out.c_str());
      return 0;
    }
    const auto t0 = std::chrono::steady_clock::now();
    nt::write_random_gpt2(out, spec, tokenizer);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "make_random_model: wrote %s (%.1f MB of weights) in %.1f s\n", out.c_str(),
                 static_cast<double>(nt::random_gpt2_weight_bytes(spec)) / 1e6, s);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_random_model: error: %s\n", e.what());
    return 1;
  }
}
