#pragma once
// What the rest of neurontrace needs from a tokenizer. Implementations: byte-level BPE (GPT-2,
// Llama-3, Qwen2: bpe_tokenizer.h) and SentencePiece (Llama-2, Mistral: spm_tokenizer.h).
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace nt {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Text -> ids, without BOS/EOS (Hugging Face's encode(text, add_special_tokens=False)).
  virtual std::vector<int> encode(std::string_view text) const = 0;
  // Ids -> text. Byte sequences that are not valid UTF-8 on their own (a token holding half of
  // an emoji) are kept as bytes, so decode(encode(t)) == t for any t.
  virtual std::string decode(const std::vector<int>& ids) const = 0;
  // The raw bytes one token stands for (for per-token display and token-selective tracing).
  virtual std::string token_bytes(int id) const = 0;
  virtual int vocab_size() const = 0;
  virtual int eos_id() const = 0;  // -1 when none
  virtual int bos_id() const = 0;  // -1 when none
  // Whether prompts get BOS prepended (Llama default true; GPT-2 false).
  virtual bool add_bos() const = 0;
};

// The text that `ids` add after `context` (e.g. a continuation after its prompt). Decoding the
// continuation alone can drop its leading space (SentencePiece removes the dummy prefix of the
// first token), so this decodes context + ids and keeps what follows the decoded context.
std::string decode_continuation(const Tokenizer& tokenizer, const std::vector<int>& context,
                                const std::vector<int>& ids);

// Loads the tokenizer of a Hugging Face model folder: tokenizer.json, vocab.json + merges.txt, or
// tokenizer.model (SentencePiece).
// Throws nt::Error naming the folder and the files it looked for when none is usable.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_dir);

}  // namespace nt
