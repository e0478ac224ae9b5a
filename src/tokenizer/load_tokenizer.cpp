// load_tokenizer: picks the tokenizer of a Hugging Face model folder.
//
// Order (first usable wins):
//   1. tokenizer.json with model.type "BPE" and the GPT-2 ByteLevel pre-tokenizer
//   2. vocab.json + merges.txt (GPT-2 byte-level BPE)
//   3. (later) tokenizer.model, SentencePiece (Llama)
// A tokenizer.json that is present but unusable (other model type, malformed) falls through to
// the next option; when nothing else is there its own error is reported, since it says more
// than "no tokenizer found".
//
// tokenizer_config.json is not read yet: its only relevant field, add_bos_token, is false for
// GPT-2, which is what BpeTokenizer::add_bos() returns.
#include <filesystem>
#include <optional>

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace nt {

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir) {
  namespace fs = std::filesystem;
  if (!fs::is_directory(model_dir)) throw Error(model_dir + ": model directory not found");
  auto file = [&](const char* name) { return (fs::path(model_dir) / name).string(); };
  auto has = [&](const std::string& path) { return fs::is_regular_file(path); };

  std::optional<Error> tokenizer_json_error;
  if (const std::string path = file("tokenizer.json"); has(path)) {
    try {
      return BpeTokenizer::from_tokenizer_json(path);
    } catch (const Error& e) {
      tokenizer_json_error = e;
    }
  }

  if (const std::string vocab = file("vocab.json"), merges = file("merges.txt");
      has(vocab) && has(merges))
    return BpeTokenizer::from_vocab_merges(vocab, merges);

  // SentencePiece (tokenizer.model) goes here, once it exists.

  if (tokenizer_json_error) throw *tokenizer_json_error;
  throw Error(model_dir + ": no tokenizer found (looked for tokenizer.json, vocab.json + merges.txt)");
}

}  // namespace nt
