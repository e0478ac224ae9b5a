// libFuzzer target: the byte-level BPE tokenizer loaders, then encode / decode.
//
// Input layout (the separators are whole lines):
//   VOCAB_JSON "\n--merges--\n" MERGES_TXT [ "\n--text--\n" TEXT ]       -> from_vocab_merges
//   TOKENIZER_JSON [ "\n--config--\n" TOKENIZER_CONFIG_JSON ] [ "\n--text--\n" TEXT ]
//                                                                        -> from_tokenizer_json
// A tokenizer that loads encodes a few fixed strings (ASCII, contractions, digits, whitespace
// runs, accents, CJK, emoji, invalid UTF-8) and TEXT: every id must be in range, decode and
// token_bytes must take every id it produced, and encoding the same text twice (the second time
// from the piece cache) must give the same ids.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_common.h"
#include "tokenizer/bpe_tokenizer.h"

namespace {

using nt::fuzz::fail;

constexpr std::string_view kMergesSep = "\n--merges--\n";
constexpr std::string_view kConfigSep = "\n--config--\n";
constexpr std::string_view kTextSep = "\n--text--\n";

const std::vector<std::string>& fixed_texts() {
  static const std::vector<std::string> texts = {
      "",
      "Hello world",
      "The quick brown fox jumps over the lazy dog.",
      "I'm sure they'll say it's 12345 or 3.14159!",
      "  leading spaces\n\n\ttabs and\r\nlines   ",
      "caf\xc3\xa9 na\xc3\xafve \xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
      "emoji \xf0\x9f\x99\x82\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd and ZWJ \xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9",
      "broken \xff\xfe\x80 utf8 \xc3",
      "<|endoftext|>",
      "e\xcc\x81 combining accent",  // not NFC-composed
  };
  return texts;
}

void exercise_text(const nt::BpeTokenizer& t, std::string_view text) {
  nt::fuzz::expect_only_nt_errors([&] {
    const std::vector<int> ids = t.encode(text);
    const int n = t.vocab_size();
    for (int id : ids)
      if (id < 0 || id >= n) fail("encode produced id " + std::to_string(id) + " outside the vocab");
    if (t.encode(text) != ids) fail("encoding the same text twice gave different ids");
    (void)t.decode(ids);
    for (int id : ids) (void)t.token_bytes(id);
  });
}

void exercise(const nt::BpeTokenizer& t, std::string_view text) {
  const int n = t.vocab_size();
  if (n < 0) fail("negative vocab size");
  if (t.eos_id() < -1 || t.eos_id() >= n) fail("eos id out of range");
  if (t.bos_id() < -1 || t.bos_id() >= n) fail("bos id out of range");
  for (const auto& s : fixed_texts()) exercise_text(t, s);
  exercise_text(t, text);
  // decode and token_bytes of the first ids, and of ids out of range (must throw nt::Error).
  nt::fuzz::expect_only_nt_errors([&] {
    std::vector<int> first;
    for (int id = 0; id < n && id < 300; ++id) first.push_back(id);
    (void)t.decode(first);
    for (int id : first) (void)t.token_bytes(id);
  });
  for (int bad : {-1, n}) {
    bool threw = false;
    try {
      (void)t.decode({bad});
    } catch (const nt::Error&) {
      threw = true;
    }
    if (!threw) fail("decode accepted an id out of range");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static nt::fuzz::ScratchDir dir("tokenizer");
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string_view text;
  if (size_t p = in.rfind(kTextSep); p != std::string_view::npos) {
    text = in.substr(p + kTextSep.size());
    in = in.substr(0, p);
  }
  const std::string vocab = dir.file("vocab.json"), merges = dir.file("merges.txt");
  const std::string tj = dir.file("tokenizer.json"), tc = dir.file("tokenizer_config.json");
  std::unique_ptr<nt::BpeTokenizer> t;
  nt::fuzz::expect_only_nt_errors([&] {
    if (size_t p = in.find(kMergesSep); p != std::string_view::npos) {
      nt::fuzz::write_bytes(vocab, in.substr(0, p));
      nt::fuzz::write_bytes(merges, in.substr(p + kMergesSep.size()));
      t = nt::BpeTokenizer::from_vocab_merges(vocab, merges);
    } else {
      std::string config_path;
      if (size_t q = in.find(kConfigSep); q != std::string_view::npos) {
        nt::fuzz::write_bytes(tc, in.substr(q + kConfigSep.size()));
        in = in.substr(0, q);
        config_path = tc;
      } else {
        nt::fuzz::remove_file(tc);
      }
      nt::fuzz::write_bytes(tj, in);
      t = nt::BpeTokenizer::from_tokenizer_json(tj, config_path);
    }
  });
  if (t) exercise(*t, text);
  return 0;
}
