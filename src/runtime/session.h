#pragma once
// A loaded model with its tokenizer, and prompt encoding with the checks every command needs.
#include <memory>
#include <string>
#include <vector>

#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace nt {

struct Session {
  std::string model_dir;
  std::unique_ptr<Model> model;
  std::unique_ptr<Tokenizer> tokenizer;

  // Encodes a prompt (BOS prepended when the tokenizer asks for it). Throws nt::Error for an empty
  // prompt or one longer than the model's context, naming the prompt by its index.
  std::vector<int> encode_prompt(const std::string& text, size_t index) const;
  std::vector<std::vector<int>> encode_prompts(const std::vector<std::string>& texts) const;
};

// Loads model and tokenizer from a Hugging Face model folder, or a model name found in the Hugging
// Face cache (io/model_resolver.h), with the linear layers' weights in `format` (load_model()).
// Throws nt::Error.
Session open_session(const std::string& model, WeightFormat format = default_weight_format());

}  // namespace nt
