#include <string>

#include "model/model.h"
#include "util/error.h"

namespace nt {

void check_step(const StepBatch& batch, const ModelConfig& config) {
  for (size_t r = 0; r < batch.tokens.size(); ++r) {
    const int tok = batch.tokens[r];
    const int p = batch.rows[r].pos;
    if (tok < 0 || tok >= config.vocab_size) throw Error("token id " + std::to_string(tok) + " out of range");
    if (p < 0 || p >= config.n_ctx)
      throw Error("position " + std::to_string(p) + " exceeds the model's context of " + std::to_string(config.n_ctx));
  }
}

}  // namespace nt
