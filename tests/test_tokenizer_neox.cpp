// The GPT-NeoX-20B tokenizer (Pythia) from its original tokenizer.json, against the fixtures' test
// vectors (ids from Hugging Face tokenizers): llama.cpp's 46 cases (tests.jsonl) and 23 more
// (tests-extra.jsonl: NFC normalization, runs of 2..31 spaces as added tokens, <|endoftext|> and
// <|padding|> inside the text, code indentation, the fixture prompts). Also the reduced tokenizer of
// pythia-tiny, and NFC through ICU.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_nfc.h"
#include "test_support.h"

namespace {

using nlohmann::json;
using nt::test::shared_path;

struct Case {
  std::string text;
  std::vector<int> ids;
};

std::vector<Case> load_cases(const std::string& file) {
  std::ifstream in(shared_path("fixtures/tokenizers/gpt-neox/" + file));
  std::vector<Case> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    const json j = json::parse(line);
    cases.push_back({j["text"].get<std::string>(), j["ids"].get<std::vector<int>>()});
  }
  return cases;
}

const nt::Tokenizer& neox() {
  static const auto t = nt::load_tokenizer(shared_path("fixtures/tokenizers/gpt-neox"));
  return *t;
}

void expect_cases(const std::vector<Case>& cases) {
  for (const Case& c : cases) {
    EXPECT_EQ(neox().encode(c.text), c.ids) << json(c.text).dump();
  }
}

TEST(TokenizerNeox, TestVectorsMatchExactly) {
  const auto cases = load_cases("tests.jsonl");
  ASSERT_EQ(cases.size(), 46u);
  expect_cases(cases);
}

TEST(TokenizerNeox, ExtraVectorsMatchExactly) {
  const auto cases = load_cases("tests-extra.jsonl");
  ASSERT_EQ(cases.size(), 23u);
  expect_cases(cases);
}

TEST(TokenizerNeox, VocabSpecialsAndSpaceRuns) {
  const auto& t = neox();
  EXPECT_EQ(t.vocab_size(), 50277);
  EXPECT_EQ(t.eos_id(), 0);
  EXPECT_FALSE(t.add_bos());
  EXPECT_EQ(t.encode("<|endoftext|>"), std::vector<int>{0});
  EXPECT_EQ(t.encode("<|padding|>"), std::vector<int>{1});
  EXPECT_EQ(t.token_bytes(50276), "  ");                   // 2 spaces
  EXPECT_EQ(t.token_bytes(50254), std::string(24, ' '));   // 24 spaces
  EXPECT_EQ(t.encode(std::string(30, ' ')), (std::vector<int>{50254, 50272}));  // 24 + 6
}

// Decoding gives back the NFC form of the text (added tokens are plain text).
TEST(TokenizerNeox, DecodeRoundTrip) {
  for (const auto& file : {"tests.jsonl", "tests-extra.jsonl"})
    for (const Case& c : load_cases(file)) EXPECT_EQ(neox().decode(c.ids), nt::to_nfc(c.text)) << json(c.text).dump();
}

TEST(TokenizerNeox, PythiaTinyReducedTokenizer) {
  const auto t = nt::load_tokenizer(shared_path("fixtures/models/pythia-tiny"));
  EXPECT_EQ(t->vocab_size(), 8023);
  EXPECT_EQ(t->encode("a  b"), (std::vector<int>{66, 8022, 67}));  // the 2-space run is id 8022
}

TEST(UnicodeNfc, NormalizesAndKeepsInvalidBytes) {
  EXPECT_EQ(nt::to_nfc("cafe\u0301"), "caf\u00e9");
  EXPECT_EQ(nt::to_nfc("\u212b"), "\u00c5");               // ANGSTROM SIGN
  EXPECT_EQ(nt::to_nfc("\ufb01"), "\ufb01");               // a compatibility ligature: NFC keeps it
  EXPECT_EQ(nt::to_nfc("a\u0302\u0323"), "\u1ead");        // reordered, then composed
  EXPECT_EQ(nt::to_nfc("e\u0301\xff" "e\u0301"), "\u00e9\xff\u00e9");
  EXPECT_EQ(nt::to_nfc(""), "");
}

}  // namespace
