#pragma once
// GPT-2 byte-level BPE (vocab.json + merges.txt, or tokenizer.json with model.type "BPE").
//  * pre-tokenization with the GPT-2 pattern
//    's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+   (PCRE2, UTF mode)
//  * each piece's UTF-8 bytes mapped through bytes_to_unicode, then merged by lowest rank
//  * special token "<|endoftext|>" (id from the vocab) is EOS and BOS; it is not parsed in text.
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace nt {

class BpeTokenizer : public Tokenizer {
 public:
  static std::unique_ptr<BpeTokenizer> from_vocab_merges(const std::string& vocab_json_path,
                                                         const std::string& merges_txt_path);
  static std::unique_ptr<BpeTokenizer> from_tokenizer_json(const std::string& tokenizer_json_path);
  ~BpeTokenizer() override;

  std::vector<int> encode(std::string_view text) const override;
  std::string decode(const std::vector<int>& ids) const override;
  std::string token_bytes(int id) const override;
  int vocab_size() const override;
  int eos_id() const override { return eos_id_; }
  int bos_id() const override { return bos_id_; }
  bool add_bos() const override { return false; }

 private:
  BpeTokenizer();
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int eos_id_ = -1;
  int bos_id_ = -1;
};

}  // namespace nt
