#pragma once
// A causal language model that computes one forward step over a batch of rows. A row is one
// token of one sequence at one position; a step may mix the whole prompt of a new sequence
// (prefill) with the next token of sequences already running (decode). Each row's keys and values
// are written to the KV cache at its position before attention, and attention for a row covers
// positions 0..pos of its own sequence, so prefill and decode are the same computation.
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "hooks/hooks.h"
#include "io/model_config.h"
#include "model/kv_cache.h"
#include "model/weight_matrix.h"

namespace nt {

struct StepBatch {
  std::vector<int> tokens;        // [rows]
  std::vector<RowInfo> rows;      // [rows]
  std::vector<int> logit_rows;    // indices of rows whose logits are wanted, in output order
  int last_layer = -1;            // with no logit rows: stop after this block (-1: run every block)
};

// Throws nt::Error when a row's token id is outside the vocabulary or its position outside the
// context: the one check every architecture's forward pass makes before reading embeddings.
void check_step(const StepBatch& batch, const ModelConfig& config);

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelConfig& config() const = 0;
  // Runs one step. `logits` receives logit_rows.size() x vocab_size floats. `hooks` may be null.
  virtual void forward(const StepBatch& batch, KVCache& cache, const Hooks* hooks, float* logits) = 0;
  // Bytes of weights a forward step reads (for bandwidth figures).
  virtual size_t weight_bytes() const = 0;
};

// Loads the model in a Hugging Face folder (config.json + safetensors). Throws nt::Error.
// `format` is the precision of the linear layers' weights (weight_matrix.h); f32 unless the
// program changed default_weight_format().
std::unique_ptr<Model> load_model(const std::string& model_dir, WeightFormat format = default_weight_format());

}  // namespace nt
