// Gemma-2's tokenizer settings. Gemma's own tokenizer.model is not in the fixtures (gemma2-tiny uses
// Llama-2's SentencePiece model, see fixtures README 2.4), so this checks what can be checked here:
// the BOS policy from tokenizer_config.json (add_bos_token) on gemma2-tiny's golden prompts, and a
// SentencePiece model trained here without the dummy prefix (Gemma's normalizer setting), whose
// text must decode without losing a leading space.
#include <gtest/gtest.h>

#include <sentencepiece_trainer.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "test_support.h"

namespace {

using nlohmann::json;
using nt::test::shared_path;
using nt::test::TempDir;
using nt::test::write_text;

TEST(TokenizerGemma, BosPolicyOnGoldenPrompts) {
  const std::string dir = shared_path("fixtures/models/gemma2-tiny");
  const auto t = nt::load_tokenizer(dir);
  EXPECT_TRUE(t->add_bos());  // tokenizer_config.json: add_bos_token true
  EXPECT_EQ(t->bos_id(), 1);
  std::ifstream in(dir + "/goldens/goldens.json");
  const json g = json::parse(in);
  for (const auto& p : g["prompts"]) {
    std::vector<int> ids = {t->bos_id()};
    const auto text = t->encode(p["text"].get<std::string>());
    ids.insert(ids.end(), text.begin(), text.end());
    EXPECT_EQ(ids, p["input_ids"].get<std::vector<int>>()) << p["text"];
  }
}

TEST(TokenizerGemma, AddBosTokenFalseIsRespected) {
  TempDir tmp;
  std::filesystem::create_symlink(shared_path("fixtures/models/gemma2-tiny/tokenizer.model"), tmp.file("tokenizer.model"));
  write_text(tmp.file("tokenizer_config.json"), R"({"add_bos_token": false})");
  EXPECT_FALSE(nt::load_tokenizer(tmp.path())->add_bos());
}

// A BPE SentencePiece model without the dummy prefix ('▁' is not put in front of the text), as
// Gemma's tokenizer.model is configured (nor are whitespace runs collapsed).
TEST(TokenizerGemma, NoDummyPrefixModelKeepsLeadingSpaces) {
  TempDir tmp;
  std::string corpus;
  for (int i = 0; i < 50; ++i) corpus += "Hello world, the quick brown fox jumps over the lazy dog " + std::to_string(i) + "\n";
  write_text(tmp.file("corpus.txt"), corpus);
  const auto st = sentencepiece::SentencePieceTrainer::Train(
      "--input=" + tmp.file("corpus.txt") + " --model_prefix=" + tmp.file("m") +
      " --model_type=bpe --vocab_size=400 --hard_vocab_limit=false --add_dummy_prefix=false --remove_extra_whitespaces=false"
      " --byte_fallback=true --character_coverage=1.0 --minloglevel=2");
  ASSERT_TRUE(st.ok()) << st.ToString();
  const auto t = nt::SpmTokenizer::from_file(tmp.file("m.model"));
  const auto ids = t->encode("Hello world");
  ASSERT_FALSE(ids.empty());
  EXPECT_NE(t->token_bytes(ids[0]).front(), ' ');  // no dummy prefix
  for (const std::string text : {"Hello world", " Hello world", "  two spaces", "fox"})
    EXPECT_EQ(t->decode(t->encode(text)), text);
}

}  // namespace
