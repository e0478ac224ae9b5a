#pragma once
// A Hugging Face model folder with seeded random weights, for benchmarks and tests that need a
// model of a real size without downloading one. Two shapes:
//   gpt2   config.json (model_type gpt2, gelu_new, tied embeddings); model.safetensors with
//          N(0, 0.02) matrices and biases, 1 + N(0, 0.1) LayerNorm weights, N(0, 0.02) LayerNorm
//          biases; vocab.json and merges.txt copied from a GPT-2 tokenizer folder.
//   llama  config.json (model_type llama, SiLU MLP, RMSNorm, RoPE, grouped-query attention with
//          kv_heads key/value heads, untied LM head, no biases); N(0, 0.02) matrices and
//          embeddings, 1 + N(0, 0.1) RMSNorm weights; tokenizer.model copied from a SentencePiece
//          tokenizer folder.
// Weights are stored as F32, or as BF16 (half the file; the loader converts them to float32).
// The values depend only on the spec (seed included), not on the machine or thread count.
#include <cstdint>
#include <string>

namespace nt {

struct RandomModelSpec {
  std::string arch = "gpt2";  // "gpt2" or "llama"
  int layers = 12;
  int width = 768;  // n_embd / hidden_size
  int heads = 12;
  int kv_heads = 0;  // llama: key/value heads (0: as many as heads); gpt2: must be 0 or heads
  int mlp = 3072;    // n_inner / intermediate_size
  int vocab = 50257;
  int ctx = 1024;  // n_positions / max_position_embeddings
  bool bf16 = false;  // store the weights as BF16 instead of F32
  uint64_t seed = 0;
};

// TinyLlama-1.1B's shape: 22 layers, 2048 wide, 32 query / 4 key-value heads, MLP 5632, vocab
// 32000, context 2048; stored as BF16.
RandomModelSpec tinyllama_shape();

// Throws nt::Error when the arch is unknown, a size is not positive, width is not divisible by
// heads or heads by kv_heads.
void validate(const RandomModelSpec& spec);

// Bytes of the weights the spec describes (the data section of model.safetensors).
size_t random_model_weight_bytes(const RandomModelSpec& spec);

// True when `dir` already holds a complete model written for the same spec (config.json with the
// same arch, sizes, dtype and seed, model.safetensors, and the tokenizer files).
bool random_model_is_current(const std::string& dir, const RandomModelSpec& spec);

// Writes the folder (created when missing). Does nothing when random_model_is_current(). config.json
// is written last, so an interrupted run is never taken for a complete model. Throws nt::Error.
void write_random_model(const std::string& dir, const RandomModelSpec& spec, const std::string& tokenizer_dir);

// The fixture tokenizer for the spec's arch in this source tree's ../shared/fixtures/tokenizers
// (gpt2 or llama-spm).
std::string default_random_model_tokenizer_dir(const std::string& arch);

}  // namespace nt
