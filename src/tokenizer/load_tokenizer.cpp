// load_tokenizer: picks the tokenizer of a Hugging Face model folder.
//
// Order (first usable wins):
//   1. tokenizer.json with model.type "BPE" and a byte-level pre-tokenizer: GPT-2's ByteLevel, or
//      the Llama-3 / Qwen2 Sequence of Split(Regex) + ByteLevel(use_regex=false)
//   2. vocab.json + merges.txt (GPT-2 byte-level BPE)
//   3. tokenizer.model, SentencePiece (Llama-2, Mistral)
// A tokenizer.json that is present but unusable (other model type, e.g. the Metaspace layout of
// Llama-2's tokenizer.json, or malformed) falls through to the next option; when nothing else is
// there its own error is reported, since it says more than "no tokenizer found". Except: a
// tokenizer.json with a Split pre-tokenizer (Llama-3 / Qwen2) that fails is reported at once,
// since the vocab.json + merges.txt Qwen2 ships beside it would be pre-tokenized as GPT-2.
//
// tokenizer_config.json, when present, gives add_bos_token (both kinds) and the bos_token /
// eos_token names (tokenizer.json).
#include <filesystem>
#include <optional>

#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/spm_tokenizer.h"
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
      return BpeTokenizer::from_tokenizer_json(path, file("tokenizer_config.json"));
    } catch (const SplitLayoutError&) {
      throw;  // the other files would tokenize differently (see SplitLayoutError)
    } catch (const Error& e) {
      tokenizer_json_error = e;
    }
  }

  if (const std::string vocab = file("vocab.json"), merges = file("merges.txt");
      has(vocab) && has(merges))
    return BpeTokenizer::from_vocab_merges(vocab, merges);

  if (const std::string path = file("tokenizer.model"); has(path))
    return SpmTokenizer::from_file(path, file("tokenizer_config.json"));

  if (tokenizer_json_error) throw *tokenizer_json_error;
  throw Error(model_dir +
              ": no tokenizer found (looked for tokenizer.json, vocab.json + merges.txt, tokenizer.model)");
}

}  // namespace nt
