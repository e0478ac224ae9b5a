#pragma once
// Random-weight models shaped like real GPT-NeoX and Gemma-2 checkpoints, for nt_bench --arch and
// make_random_model --arch (the GPT-2 one is random_model.h):
//   pythia-160m  gpt_neox, 12 layers, 768 wide, 12 heads, MLP 3072, vocab 50304, rotary_pct 0.25,
//                parallel residual, untied embed_out; F32
//   gemma2-2b    gemma2, 26 layers, 2304 wide, 8 heads / 4 KV heads of 256, MLP 9216, vocab 256000,
//                query_pre_attn_scalar 256, softcaps 50 / 30, sliding window 4096; BF16 (5.2 GB)
// config.json, model.safetensors and a tokenizer from the fixtures (the GPT-NeoX-20B tokenizer.json;
// Llama-2's tokenizer.model for gemma2-2b, whose vocabulary is larger: the benchmark feeds ids). Matrices
// N(0, 0.02); norm weights as each family stores them (LayerNorm 1 + N(0, 0.1), Gemma's offsets
// N(0, 0.1)); seeded per (seed, tensor, chunk), so values do not depend on the thread count.
#include <cstdint>
#include <string>
#include <vector>

namespace nt {

// The shapes above, by name.
std::vector<std::string> random_family_names();
bool is_random_family(const std::string& name);

// True when `dir` holds the model written for (name, seed).
bool random_family_is_current(const std::string& dir, const std::string& name, uint64_t seed);

// Writes the folder (created when missing); does nothing when it is current; refuses to overwrite a
// folder it did not write. config.json is written last. Throws nt::Error (unknown name included).
void write_random_family(const std::string& dir, const std::string& name, uint64_t seed = 0);

}  // namespace nt
