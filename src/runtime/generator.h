#pragma once
// Batched generation with a KV cache. All prompts are queued; up to `max_batch` sequences run at
// once, a new one joining as soon as another finishes (its prompt is prefilled in the same step as
// the others' next tokens). Every linear layer is one matrix product over all rows of the step.
#include <functional>
#include <string>
#include <vector>

#include "hooks/hooks.h"
#include "model/model.h"
#include "runtime/sampler.h"

namespace nt {

struct GenerationConfig {
  int max_new_tokens = 32;
  SamplingConfig sampling;
  bool stop_at_eos = true;
  // Also run the model over the last generated token (no new token is sampled), so hooks see an
  // activation for every generated token. Tracing turns this on.
  bool feed_last_token = false;
  // Recompute the whole sequence at every step instead of using the KV cache (for checking that
  // both give the same result; much slower).
  bool recompute = false;
  // Random stream of each prompt's sampler; empty: the prompt's index. Steering gives every variant
  // of one prompt the same stream, so steered and unsteered text differ only through the steering.
  std::vector<uint64_t> sampling_streams;
  // Prompts to leave out (skip[i] != 0): no forward step, an empty result. Sequence ids stay the
  // prompts' indices, so a resumed study generates exactly what a full run would have.
  std::vector<char> skip;
  int max_batch = 64;          // sequences in flight at once
  // Rows per step, prompt tokens of newly admitted sequences included (a longer prompt runs alone).
  // Bounds the step's activation memory (~60 KB per row for GPT-2 small); 256 rows already keep
  // the matrix kernels at full speed.
  int max_step_rows = 256;
};

struct GenerationResult {
  std::vector<int> prompt_ids;
  std::vector<int> generated_ids;
  std::string stop_reason;  // "length" or "eos"
};

struct GenerationProgress {
  int sequences_done = 0;
  int sequences_total = 0;
  long tokens_generated = 0;
};

class Generator {
 public:
  Generator(Model& model, const Hooks* hooks) : model_(model), hooks_(hooks) {}
  void on_progress(std::function<void(const GenerationProgress&)> fn) { progress_ = std::move(fn); }
  // Called once per sequence after its last forward step (hooks will see no more rows of it).
  void on_sequence_done(std::function<void(int seq, const GenerationResult&)> fn) { sequence_done_ = std::move(fn); }
  // Throws nt::Error when a prompt is empty, or when it and max_new_tokens do not fit the context.
  std::vector<GenerationResult> generate(const std::vector<std::vector<int>>& prompts,
                                         const GenerationConfig& config);

 private:
  Model& model_;
  const Hooks* hooks_;
  std::function<void(const GenerationProgress&)> progress_;
  std::function<void(int, const GenerationResult&)> sequence_done_;
};

}  // namespace nt
