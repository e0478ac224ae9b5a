#pragma once
// SentencePiece tokenizer (tokenizer.model, the Llama-2 / Mistral / Gemma family), through
// libsentencepiece.
//  * encode: sentencepiece's own encoding (dummy-prefix '▁' when the model's normalizer adds it,
//    highest-score BPE merges, byte fallback), without BOS/EOS; empty text gives no tokens. Bytes that are not valid UTF-8
//    (which sentencepiece would turn into U+FFFD) become their <0xXX> byte tokens instead.
//  * token_bytes: the piece with '▁' as ' '; byte pieces <0xXX> give the raw byte; control and
//    unknown pieces give their piece text ("<s>", "</s>", "<unk>").
//  * decode: token_bytes concatenated, except that control tokens give nothing and the first
//    other token loses the one leading space the dummy prefix added (as sentencepiece and
//    Hugging Face decode; a model without the dummy prefix, such as Gemma's, keeps it), so decode(encode(t)) == t and decode({bos} + encode(t)) == t for valid
//    UTF-8 t. Bytes are kept as bytes (no U+FFFD for a half emoji).
//  * add_bos: true (LlamaTokenizer's default) unless tokenizer_config.json says "add_bos_token".
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace nt {

class SpmTokenizer : public Tokenizer {
 public:
  // Loads `model_path` (tokenizer.model). `tokenizer_config_path` may be empty or name a file
  // that does not exist; otherwise its "add_bos_token" (when present) sets add_bos().
  // Throws nt::Error naming the file on any problem.
  static std::unique_ptr<SpmTokenizer> from_file(const std::string& model_path,
                                                 const std::string& tokenizer_config_path = "");
  ~SpmTokenizer() override;

  std::vector<int> encode(std::string_view text) const override;
  std::string decode(const std::vector<int>& ids) const override;
  std::string token_bytes(int id) const override;
  int vocab_size() const override;
  int eos_id() const override { return eos_id_; }
  int bos_id() const override { return bos_id_; }
  bool add_bos() const override { return add_bos_; }

 private:
  SpmTokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int eos_id_ = -1;
  int bos_id_ = -1;
  bool add_bos_ = true;
};

}  // namespace nt
