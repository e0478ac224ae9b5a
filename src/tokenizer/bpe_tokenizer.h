#pragma once
// Byte-level BPE (vocab.json + merges.txt, or tokenizer.json with model.type "BPE"): GPT-2, and
// the Llama-3 / Qwen2 tokenizer.json layout.
//  * pre-tokenization with the GPT-2 pattern
//    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+   (PCRE2, UTF mode)
//    or, for a tokenizer.json pre_tokenizer Sequence [Split(Regex), ByteLevel(use_regex=false)],
//    with the Split's regex (Llama-3: ...|\p{N}{1,3}|..., Qwen2: ...|\p{N}|...)
//  * each piece's UTF-8 bytes mapped through bytes_to_unicode, then merged by lowest rank
//    (with model.ignore_merges, a piece that is itself a vocab token is taken whole)
//  * normalizer NFC (GPT-NeoX, Qwen2): text is NFC-normalized (ICU, see unicode_nfc.h)
//  * added tokens (tokenizer.json added_tokens) are found in text as tokenizers finds them:
//    those with normalized=false (the special tokens, e.g. GPT-NeoX's <|endoftext|>, <|padding|>)
//    in the raw text, leftmost first, longest at a position; the pieces between them are
//    normalized, then those with normalized=true (GPT-NeoX's runs of 2..24 spaces) are found the
//    same way; what is left is pre-tokenized and merged. (Added tokens' lstrip / rstrip /
//    single_word options are not applied; the tokenizers neurontrace reads leave them false.)
//    vocab.json + merges.txt (GPT-2) has no added tokens: "<|endoftext|>" there is plain text.
//  * special tokens: "<|endoftext|>" (id from the vocab or added_tokens) is EOS and BOS unless
//    tokenizer_config.json names bos_token / eos_token; add_bos() is tokenizer_config.json's
//    add_bos_token, else whether the post_processor template starts with a special token
//    (Llama-3's <|begin_of_text|>).
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace nt {

// What from_tokenizer_json throws for a tokenizer.json with the Llama-3 / Qwen2 layout (a Split
// pre-tokenizer) that it cannot use: a vocab.json + merges.txt beside it (Qwen2 ships both) would
// be pre-tokenized with GPT-2's pattern instead, so load_tokenizer must not fall back to them.
struct SplitLayoutError : Error {
  using Error::Error;
};

class BpeTokenizer : public Tokenizer {
 public:
  static std::unique_ptr<BpeTokenizer> from_vocab_merges(const std::string& vocab_json_path,
                                                         const std::string& merges_txt_path);
  // `tokenizer_config_path` may be empty or name a file that does not exist.
  static std::unique_ptr<BpeTokenizer> from_tokenizer_json(const std::string& tokenizer_json_path,
                                                           const std::string& tokenizer_config_path = "");
  ~BpeTokenizer() override;

  std::vector<int> encode(std::string_view text) const override;
  std::string decode(const std::vector<int>& ids) const override;
  std::string token_bytes(int id) const override;
  int vocab_size() const override;
  int eos_id() const override { return eos_id_; }
  int bos_id() const override { return bos_id_; }
  bool add_bos() const override { return add_bos_; }

 private:
  BpeTokenizer();
  static std::unique_ptr<BpeTokenizer> from_tokenizer_json(const std::string& tokenizer_json_path,
                                                           const std::string& tokenizer_config_path,
                                                           bool& split_layout);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int eos_id_ = -1;
  int bos_id_ = -1;
  bool add_bos_ = false;
};

}  // namespace nt
