#pragma once
// Picks the next token from a row of logits: greedy (temperature 0), or sampling with temperature,
// then top-k, then top-p (nucleus), in that order, as Hugging Face's generate applies them.
// Each sequence has its own random stream, seeded from (seed, prompt index), so its tokens do not
// depend on which other sequences share its batch.
#include <cstdint>
#include <random>
#include <vector>

namespace nt {

struct SamplingConfig {
  float temperature = 0.0f;  // 0: greedy
  int top_k = 0;             // 0: off
  float top_p = 1.0f;        // 1: off
  uint64_t seed = 0;
};

// Validates the ranges (temperature >= 0, top_k >= 0, 0 < top_p <= 1); throws nt::Error.
void validate(const SamplingConfig& config);

class Sampler {
 public:
  Sampler(const SamplingConfig& config, uint64_t sequence_index);
  int next(const float* logits, int vocab_size);

 private:
  SamplingConfig config_;
  std::mt19937_64 rng_;
  std::vector<std::pair<float, int>> candidates_;
};

// Lowest id among the maximal logits.
int argmax(const float* logits, int n);

}  // namespace nt
