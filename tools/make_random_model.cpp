// make_random_model: writes a GPT-2- or Llama-shaped Hugging Face model folder with seeded random
// weights (see src/io/random_model.h). A folder that already holds the same model is left as it is.
//
//   make_random_model --out DIR [--arch gpt2|llama] [--layers N] [--width N] [--heads N]
//                     [--kv-heads N] [--mlp N] [--vocab N] [--ctx N] [--dtype f32|bf16] [--seed 0]
//                     [--tokenizer DIR]
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
    "usage: make_random_model --out DIR [--arch gpt2|llama] [--layers N] [--width N] [--heads N]\n"
    "                         [--kv-heads N] [--mlp N] [--vocab N] [--ctx N] [--dtype f32|bf16]\n"
    "                         [--seed N] [--tokenizer DIR]\n"
    "Writes config.json, model.safetensors (random weights) and the tokenizer files to DIR.\n"
    "Defaults: --arch gpt2 is GPT-2 small (12 layers, 768 wide, 12 heads, MLP 3072, vocab 50257,\n"
    "context 1024, f32); --arch llama is TinyLlama-1.1B's shape (22 layers, 2048 wide, 32 heads,\n"
    "4 key/value heads, MLP 5632, vocab 32000, context 2048, bf16). Seed 0; tokenizer from\n"
    "../shared/fixtures/tokenizers/{gpt2,llama-spm} next to the source tree.\n"
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
    nt::RandomModelSpec spec;
    for (int i = 1; i + 1 < argc; ++i)  // the shape first: it sets the defaults the other flags change
      if (std::string(argv[i]) == "--arch") {
        const std::string arch = argv[i + 1];
        if (arch == "llama") spec = nt::tinyllama_shape();
        spec.arch = arch;
      }
    std::string out;
    std::string tokenizer;
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
      else if (flag == "--tokenizer")
        tokenizer = value;
      else if (flag == "--arch")
        continue;  // read above
      else if (flag == "--dtype") {
        if (value != "f32" && value != "bf16") throw nt::Error("--dtype: expected f32 or bf16, got '" + value + "'");
        spec.bf16 = value == "bf16";
      } else if (flag == "--kv-heads")
        spec.kv_heads = static_cast<int>(parse_number(flag, value, 1, kMaxDim));
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
    if (spec.arch == "pythia-160m" || spec.arch == "gemma2-2b") {
      const auto t0 = std::chrono::steady_clock::now();
      nt::write_random_family(out, spec.arch, spec.seed);
      std::fprintf(stderr, "make_random_model: %s ready in %s (%.1f s)\n", spec.arch.c_str(), out.c_str(),
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      return 0;
    }
    nt::validate(spec);
    if (tokenizer.empty()) tokenizer = nt::default_random_model_tokenizer_dir(spec.arch);
    if (nt::random_model_is_current(out, spec)) {
      std::fprintf(stderr, "make_random_model: %s is up to date\n", out.c_str());
      return 0;
    }
    const auto t0 = std::chrono::steady_clock::now();
    nt::write_random_model(out, spec, tokenizer);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::fprintf(stderr, "make_random_model: wrote %s (%.1f MB of weights) in %.1f s\n", out.c_str(),
                 static_cast<double>(nt::random_model_weight_bytes(spec)) / 1e6, s);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_random_model: error: %s\n", e.what());
    return 1;
  }
}
