#pragma once
// A GPT-2-shaped Hugging Face model folder with seeded random weights, for benchmarks and tests
// that need a model of a real size without downloading one:
//   config.json        model_type gpt2, sizes below, gelu_new, tied embeddings
//   model.safetensors  F32, N(0, 0.02) matrices and biases, 1 + N(0, 0.1) LayerNorm weights,
//                      N(0, 0.02) LayerNorm biases
//   vocab.json, merges.txt  copied from a GPT-2 tokenizer folder
// The values depend only on the spec (seed included), not on the machine or thread count.
#include <cstdint>
#include <string>

namespace nt {

struct RandomGpt2Spec {
  int layers = 12;
  int width = 768;  // n_embd
  int heads = 12;
  int mlp = 3072;  // n_inner
  int vocab = 50257;
  int ctx = 1024;  // n_positions
  uint64_t seed = 0;
};

// Throws nt::Error when a size is not positive or width is not divisible by heads.
void validate(const RandomGpt2Spec& spec);

// Bytes of float32 weights the spec describes (the data section of model.safetensors).
size_t random_gpt2_weight_bytes(const RandomGpt2Spec& spec);

// True when `dir` already holds a complete model written for the same spec (config.json with the
// same sizes and seed, model.safetensors, vocab.json and merges.txt).
bool random_gpt2_is_current(const std::string& dir, const RandomGpt2Spec& spec);

// Writes the folder (created when missing). Does nothing when random_gpt2_is_current(). config.json
// is written last, so an interrupted run is never taken for a complete model. Throws nt::Error.
void write_random_gpt2(const std::string& dir, const RandomGpt2Spec& spec, const std::string& tokenizer_dir);

// The fixture GPT-2 tokenizer next to this source tree (<repo>/../shared/fixtures/tokenizers/gpt2).
std::string default_random_gpt2_tokenizer_dir();

}  // namespace nt
