// SentencePiece (Llama-2) tokenizer: the 46 test vectors, the llama-tiny golden prompts (with BOS),
// decoding, token bytes, tokenizer_config.json's add_bos_token, and how the loader picks it.
// Byte-level BPE with the Llama-3 / Qwen2 tokenizer.json layout (Split regex + ByteLevel), on a
// hand-made vocabulary; the NFC check used for Qwen2's normalizer.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/session.h"
#include "test_support.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/spm_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode_nfc.h"
#include "util/error.h"

namespace {

using nlohmann::json;
using nt::SpmTokenizer;
using nt::test::shared_path;
using nt::test::TempDir;
using nt::test::write_text;

struct Case {
  std::string text;
  std::vector<int> ids;
};

std::string spm_dir() { return shared_path("fixtures/tokenizers/llama-spm"); }

std::vector<Case> load_cases() {
  std::ifstream in(spm_dir() + "/tests.jsonl");
  EXPECT_TRUE(in.good());
  std::vector<Case> cases;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    json j = json::parse(line);
    cases.push_back({j["text"].get<std::string>(), j["ids"].get<std::vector<int>>()});
  }
  return cases;
}

const SpmTokenizer& llama() {
  static auto tok = SpmTokenizer::from_file(spm_dir() + "/tokenizer.model");
  return *tok;
}

std::string ids_str(const std::vector<int>& ids) {
  std::ostringstream ss;
  for (int id : ids) ss << ' ' << id;
  return ss.str();
}

std::string hex(const std::string& s) {
  std::string out;
  char buf[4];
  for (unsigned char c : s) {
    std::snprintf(buf, sizeof buf, "%02x", c);
    out += buf;
  }
  return out;
}

template <class F>
void expect_error(F f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected nt::Error containing '" << needle << "'";
  } catch (const nt::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(TokenizerLlama, TestVectorsMatchExactly) {
  const auto cases = load_cases();
  ASSERT_EQ(cases.size(), 46u);
  int failures = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    std::vector<int> got = llama().encode(cases[i].text);
    if (got != cases[i].ids) {
      ++failures;
      ADD_FAILURE() << "case " << i << " text=" << json(cases[i].text).dump()
                    << "\n  expected:" << ids_str(cases[i].ids) << "\n  got:     " << ids_str(got);
    }
  }
  EXPECT_EQ(failures, 0);
}

// tests.inp / tests.out hold the same cases in llama.cpp's format.
TEST(TokenizerLlama, InpOutFilesAgreeWithJsonl) {
  const std::string inp = nt::test::read_text(spm_dir() + "/tests.inp");
  const std::string out = nt::test::read_text(spm_dir() + "/tests.out");
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> texts;
  for (size_t pos = 0; pos < inp.size();) {
    size_t end = inp.find(sep, pos);
    ASSERT_NE(end, std::string::npos);
    texts.push_back(inp.substr(pos, end - pos));
    pos = end + sep.size();
  }
  std::istringstream lines(out);
  std::string line;
  size_t i = 0;
  for (; std::getline(lines, line); ++i) {
    ASSERT_LT(i, texts.size());
    std::istringstream nums(line);
    std::vector<int> ids;
    for (int id; nums >> id;) ids.push_back(id);
    EXPECT_EQ(llama().encode(texts[i]), ids) << "case " << i << " " << json(texts[i]).dump();
  }
  EXPECT_EQ(i, texts.size());
  EXPECT_EQ(texts.size(), 46u);
}

TEST(TokenizerLlama, VocabAndSpecialTokens) {
  const auto& t = llama();
  EXPECT_EQ(t.vocab_size(), 32000);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_TRUE(t.add_bos());
  EXPECT_EQ(t.token_bytes(0), "<unk>");
  EXPECT_EQ(t.token_bytes(1), "<s>");
  EXPECT_EQ(t.token_bytes(2), "</s>");
  // Byte pieces <0xXX> (id = byte + 3) stand for the raw byte.
  EXPECT_EQ(t.token_bytes(3), std::string(1, '\0'));
  EXPECT_EQ(t.token_bytes(13), "\n");  // <0x0A>
  EXPECT_EQ(t.token_bytes(243), "\xF0");
  EXPECT_EQ(t.token_bytes(258), "\xFF");
  // '▁' is a space.
  EXPECT_EQ(t.token_bytes(15043), " Hello");
  EXPECT_EQ(t.token_bytes(29871), " ");
  EXPECT_EQ(t.token_bytes(29892), ",");
  expect_error([&] { t.token_bytes(32000); }, "out of range");
  expect_error([&] { t.token_bytes(-1); }, "out of range");
  // Special tokens are not parsed in text.
  std::vector<int> ids = t.encode("<s>");
  EXPECT_GT(ids.size(), 1u);
}

TEST(TokenizerLlama, GoldenPromptsWithBos) {
  std::ifstream in(shared_path("fixtures/models/llama-tiny/goldens/goldens.json"));
  ASSERT_TRUE(in.good());
  json g = json::parse(in);
  auto tok = nt::load_tokenizer(shared_path("fixtures/models/llama-tiny"));
  EXPECT_TRUE(tok->add_bos());
  EXPECT_EQ(tok->bos_id(), 1);
  ASSERT_EQ(g["prompts"].size(), 4u);
  for (size_t i = 0; i < g["prompts"].size(); ++i) {
    const json& p = g["prompts"][i];
    const std::string text = p["text"].get<std::string>();
    EXPECT_TRUE(p["bos_prepended"].get<bool>());
    std::vector<int> ids = {tok->bos_id()};
    for (int id : tok->encode(text)) ids.push_back(id);
    EXPECT_EQ(ids, p["input_ids"].get<std::vector<int>>()) << "prompt " << i << " " << json(text).dump();
  }
  // Through the session, as the CLI encodes prompts (the empty prompt is refused there).
  nt::Session s = nt::open_session(shared_path("fixtures/models/llama-tiny"));
  EXPECT_EQ(s.encode_prompt("Hello, my name is", 0), (std::vector<int>{1, 15043, 29892, 590, 1024, 338}));
}

TEST(TokenizerLlama, DecodeRoundTrips) {
  std::vector<std::string> texts = {"Hello", " leading space", "  two leading", "trailing  ",
                                    "a\tb\nc", "🦙🦙 über", "日本語のテキスト", ""};
  for (const auto& c : load_cases()) texts.push_back(c.text);
  const auto& t = llama();
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int> ids = t.encode(texts[i]);
    EXPECT_EQ(t.decode(ids), texts[i]) << "text " << i << " " << json(texts[i]).dump();
    // BOS / EOS are invisible in decoded text.
    std::vector<int> with_bos = {t.bos_id()};
    with_bos.insert(with_bos.end(), ids.begin(), ids.end());
    with_bos.push_back(t.eos_id());
    EXPECT_EQ(t.decode(with_bos), texts[i]) << "text " << i;
    // token_bytes concatenated is the text with the dummy-prefix space in front.
    std::string joined;
    for (int id : ids) joined += t.token_bytes(id);
    EXPECT_EQ(joined, texts[i].empty() ? "" : " " + texts[i]) << "text " << i;
  }
  // A byte-fallback emoji: the first byte token holds one raw byte, decode gives the bytes back.
  std::vector<int> ids = t.encode("🦙");
  ASSERT_EQ(ids, (std::vector<int>{29871, 243, 162, 169, 156}));
  EXPECT_EQ(t.token_bytes(ids[1]), "\xF0");
  EXPECT_EQ(t.decode({ids[1], ids[2]}), "\xF0\x9F");  // half an emoji stays bytes
  expect_error([&] { t.decode({5, 32000}); }, "out of range");
}

TEST(TokenizerLlama, InvalidUtf8IsEncodedAsBytesAndRoundTrips) {
  const auto& t = llama();
  const std::vector<std::string> bad = {
      std::string("\xff"),
      std::string("abc\xff\xfe def"),
      std::string("caf\xc3"),                     // truncated 2-byte sequence at the end
      std::string("\xe2\x82 x \xf0\x9f\xa6"),     // truncated 3- and 4-byte sequences
      std::string("ok \xc0\xaf overlong, \xed\xa0\x80 surrogate"),
      std::string("real \xef\xbf\xbd and fake \xff, \xef\xbf\xbd\xef\xbf\xbd\xfe"),  // U+FFFD kept
      std::string("nonchar \xef\xbf\xbe \xf4\x8f\xbf\xbf \xff"),
  };
  for (const auto& s : bad) {
    std::vector<int> ids = t.encode(s);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(t.decode(ids), s) << hex(s);
  }
  EXPECT_EQ(t.encode(std::string("a\xff")), (std::vector<int>{263, 0xff + 3}));
  // Valid text with U+FFFD is sentencepiece's own encoding.
  EXPECT_EQ(t.encode("\xef\xbf\xbd"), (std::vector<int>{29871, 30140}));
}

TEST(TokenizerLlama, TokenizerConfigAddBosToken) {
  TempDir dir;
  write_text(dir.file("tokenizer.model"), nt::test::read_text(spm_dir() + "/tokenizer.model"));
  EXPECT_TRUE(nt::load_tokenizer(dir.path())->add_bos());  // no tokenizer_config.json
  write_text(dir.file("tokenizer_config.json"), R"({"add_bos_token": false, "add_eos_token": false})");
  auto t = nt::load_tokenizer(dir.path());
  EXPECT_FALSE(t->add_bos());
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->encode("Hello world"), (std::vector<int>{15043, 3186}));
  write_text(dir.file("tokenizer_config.json"), R"({"add_bos_token": true})");
  EXPECT_TRUE(nt::load_tokenizer(dir.path())->add_bos());
  write_text(dir.file("tokenizer_config.json"), R"({"model_max_length": 4096})");
  EXPECT_TRUE(nt::load_tokenizer(dir.path())->add_bos());
  write_text(dir.file("tokenizer_config.json"), R"({"add_bos_token": "yes"})");
  expect_error([&] { nt::load_tokenizer(dir.path()); }, "tokenizer_config.json: add_bos_token");
  write_text(dir.file("tokenizer_config.json"), R"({"add_bos_token": )");
  expect_error([&] { nt::load_tokenizer(dir.path()); }, "tokenizer_config.json: malformed JSON");
}

// Llama-2's tokenizer.json (a Metaspace/SentencePiece-style BPE) is not byte-level BPE: the
// loader falls through to tokenizer.model instead.
TEST(TokenizerLlama, UnusableTokenizerJsonFallsBackToTokenizerModel) {
  TempDir dir;
  write_text(dir.file("tokenizer.model"), nt::test::read_text(spm_dir() + "/tokenizer.model"));
  write_text(dir.file("tokenizer.json"), R"({"normalizer": {"type": "Sequence", "normalizers": []},
      "pre_tokenizer": null, "model": {"type": "BPE", "vocab": {}, "merges": [], "byte_fallback": true}})");
  auto t = nt::load_tokenizer(dir.path());
  EXPECT_EQ(t->vocab_size(), 32000);
  EXPECT_EQ(t->encode("Hello world"), (std::vector<int>{15043, 3186}));
}

TEST(TokenizerLlama, Errors) {
  TempDir dir;
  expect_error([&] { nt::load_tokenizer(dir.path()); }, "tokenizer.model");
  expect_error([&] { nt::load_tokenizer(dir.path()); }, dir.path() + ": no tokenizer found");
  write_text(dir.file("tokenizer.model"), "not a protobuf at all \xff\xff\xff");
  expect_error([&] { nt::load_tokenizer(dir.path()); }, dir.file("tokenizer.model") + ": not a SentencePiece model");
  expect_error([&] { SpmTokenizer::from_file(dir.file("missing.model")); }, "missing.model: file not found");
}

// ---- Byte-level BPE, Llama-3 / Qwen2 tokenizer.json layout ------------------------------------

constexpr const char* kLlama3Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// A small byte-level vocabulary ("\u0120" is the alphabet's space) with a few merges.
json small_bpe_model() {
  json vocab = json::object();
  const std::vector<std::string> tokens = {"1",  "2",   "3",  "4",   "5",    "6", "7",     "12",
                                           "123", "45", "456", "1234", "H",  "E", "'",     "S",
                                           "'S", "HE",  "\u0120", "h", "i",  "\u0120h", "\u0120hi",
                                           "a",  "b",   "c",   "abc"};
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = static_cast<int>(i);
  // ids 27 and 28 are the added tokens; then the alphabet forms of 'f' and the bytes of 'é'.
  vocab["f"] = 29;
  vocab["\u00c3"] = 30;
  vocab["\u00a9"] = 31;
  json model = {{"type", "BPE"},
                {"vocab", vocab},
                {"merges", {"1 2", "12 3", "123 4", "4 5", "45 6", "H E", "' S", "\u0120 h", "\u0120h i"}}};
  return model;
}

json split_pre_tokenizer(const std::string& pattern) {
  return {{"type", "Sequence"},
          {"pretokenizers",
           {{{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
            {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}}}}};
}

// Llama-3's post-processor: ByteLevel, then a template adding <|begin_of_text|> (id 27).
json llama3_post_processor() {
  json tmpl = {{"type", "TemplateProcessing"},
               {"single", {{{"SpecialToken", {{"id", "<|begin_of_text|>"}, {"type_id", 0}}}},
                           {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
               {"pair", json::array()},
               {"special_tokens",
                {{"<|begin_of_text|>", {{"id", "<|begin_of_text|>"}, {"ids", {27}}, {"tokens", {"<|begin_of_text|>"}}}}}}};
  return {{"type", "Sequence"},
          {"processors", {{{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", false}}, tmpl}}};
}

json tokenizer_json(const json& pre_tokenizer) {
  json j;
  j["version"] = "1.0";
  j["normalizer"] = nullptr;
  j["pre_tokenizer"] = pre_tokenizer;
  j["post_processor"] = nullptr;
  j["model"] = small_bpe_model();
  j["added_tokens"] = {{{"id", 27}, {"content", "<|begin_of_text|>"}, {"special", true}},
                       {{"id", 28}, {"content", "<|end_of_text|>"}, {"special", true}}};
  return j;
}

TEST(TokenizerByteLevelSplit, SplitRegexReplacesGpt2Pattern) {
  TempDir dir;
  const std::string path = dir.file("tokenizer.json");
  // The same vocabulary and merges with GPT-2's built-in pattern ...
  write_text(path, tokenizer_json({{"type", "ByteLevel"}, {"add_prefix_space", false}}).dump());
  auto gpt2 = nt::load_tokenizer(dir.path());
  EXPECT_EQ(gpt2->encode("1234567"), (std::vector<int>{11, 4, 5, 6}));  // one digit run: 1234 5 6 7
  EXPECT_EQ(gpt2->encode("HE'S"), (std::vector<int>{17, 14, 15}));      // 's is lower case only
  EXPECT_EQ(gpt2->encode(" hi"), (std::vector<int>{22}));

  // ... and with Llama-3's Split regex: digits in groups of three, case-insensitive contractions.
  write_text(path, tokenizer_json(split_pre_tokenizer(kLlama3Pattern)).dump());
  auto llama3 = nt::load_tokenizer(dir.path());
  EXPECT_EQ(llama3->encode("1234567"), (std::vector<int>{8, 10, 6}));  // 123 456 7
  EXPECT_EQ(llama3->encode("HE'S"), (std::vector<int>{17, 16}));       // HE 'S
  EXPECT_EQ(llama3->encode(" hi"), (std::vector<int>{22}));
  EXPECT_EQ(llama3->decode(llama3->encode("1234567 HE'S hi")), "1234567 HE'S hi");
  EXPECT_FALSE(llama3->add_bos());  // no template, no tokenizer_config.json
  EXPECT_EQ(llama3->eos_id(), -1);

  // Qwen2's: every digit on its own.
  write_text(path, tokenizer_json(split_pre_tokenizer(kQwen2Pattern)).dump());
  EXPECT_EQ(nt::load_tokenizer(dir.path())->encode("1234567"), (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
}

TEST(TokenizerByteLevelSplit, IgnoreMergesTakesWholeTokens) {
  TempDir dir;
  const std::string path = dir.file("tokenizer.json");
  json j = tokenizer_json(split_pre_tokenizer(kLlama3Pattern));
  EXPECT_EQ((write_text(path, j.dump()), nt::load_tokenizer(dir.path())->encode("abc")),
            (std::vector<int>{23, 24, 25}));  // no merge makes "abc"
  j["model"]["ignore_merges"] = true;
  write_text(path, j.dump());
  EXPECT_EQ(nt::load_tokenizer(dir.path())->encode("abc"), (std::vector<int>{26}));
  EXPECT_EQ(nt::load_tokenizer(dir.path())->encode("1234567"), (std::vector<int>{8, 10, 6}));
}

TEST(TokenizerByteLevelSplit, BosEosFromTemplateAndTokenizerConfig) {
  TempDir dir;
  json j = tokenizer_json(split_pre_tokenizer(kLlama3Pattern));
  j["post_processor"] = llama3_post_processor();
  write_text(dir.file("tokenizer.json"), j.dump());
  auto t = nt::load_tokenizer(dir.path());
  EXPECT_TRUE(t->add_bos());  // the template starts with <|begin_of_text|>
  EXPECT_EQ(t->bos_id(), 27);
  EXPECT_EQ(t->token_bytes(27), "<|begin_of_text|>");

  write_text(dir.file("tokenizer_config.json"),
             R"({"bos_token": "<|begin_of_text|>", "eos_token": {"content": "<|end_of_text|>", "special": true}})");
  t = nt::load_tokenizer(dir.path());
  EXPECT_TRUE(t->add_bos());
  EXPECT_EQ(t->bos_id(), 27);
  EXPECT_EQ(t->eos_id(), 28);

  write_text(dir.file("tokenizer_config.json"),
             R"({"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "add_bos_token": false})");
  EXPECT_FALSE(nt::load_tokenizer(dir.path())->add_bos());

  // Qwen2: bos_token null, no template.
  j["post_processor"] = {{"type", "ByteLevel"}};
  write_text(dir.file("tokenizer.json"), j.dump());
  write_text(dir.file("tokenizer_config.json"), R"({"bos_token": null, "eos_token": "<|end_of_text|>"})");
  t = nt::load_tokenizer(dir.path());
  EXPECT_FALSE(t->add_bos());
  EXPECT_EQ(t->bos_id(), -1);
  EXPECT_EQ(t->eos_id(), 28);

  write_text(dir.file("tokenizer_config.json"), R"({"eos_token": "<|im_end|>"})");
  expect_error([&] { nt::load_tokenizer(dir.path()); }, "eos_token '<|im_end|>' is not a token of");
  write_text(dir.file("tokenizer_config.json"), R"({"bos_token": 5})");
  expect_error([&] { nt::load_tokenizer(dir.path()); }, "tokenizer_config.json: bos_token must be");
}

// A Split-layout tokenizer.json that cannot be used is an error even when vocab.json + merges.txt
// are there (Qwen2 ships them; read alone they would be pre-tokenized with GPT-2's pattern).
TEST(TokenizerByteLevelSplit, UnsupportedSplitLayoutIsReportedNotFallenBackFrom) {
  TempDir dir;
  json j = tokenizer_json(split_pre_tokenizer(kLlama3Pattern));
  j["pre_tokenizer"]["pretokenizers"][0]["behavior"] = "Removed";
  write_text(dir.file("tokenizer.json"), j.dump());
  write_text(dir.file("vocab.json"), small_bpe_model()["vocab"].dump());
  write_text(dir.file("merges.txt"), "#version: 0.2\n1 2\n");
  expect_error([&] { nt::load_tokenizer(dir.path()); }, "Split pre_tokenizer behavior 'Removed'");

  j = tokenizer_json(split_pre_tokenizer(kLlama3Pattern));
  j["pre_tokenizer"]["pretokenizers"][1]["use_regex"] = true;
  write_text(dir.file("tokenizer.json"), j.dump());
  expect_error([&] { nt::load_tokenizer(dir.path()); }, "use_regex=true after a Split");

  j = tokenizer_json(split_pre_tokenizer("(unclosed"));
  write_text(dir.file("tokenizer.json"), j.dump());
  expect_error([&] { nt::load_tokenizer(dir.path()); }, "cannot compile the pre-tokenizer pattern");

  j = tokenizer_json(split_pre_tokenizer(kLlama3Pattern));
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"] = {{"String", " "}};
  write_text(dir.file("tokenizer.json"), j.dump());
  expect_error([&] { nt::load_tokenizer(dir.path()); }, "pattern must be {\"Regex\": ...}");

  // Other Sequences (no Split) are unusable tokenizer.json files like before: fall back.
  j["pre_tokenizer"] = {{"type", "Sequence"}, {"pretokenizers", {{{"type", "Digits"}}, {{"type", "ByteLevel"}}}}};
  write_text(dir.file("tokenizer.json"), j.dump());
  EXPECT_EQ(nt::load_tokenizer(dir.path())->encode("12"), (std::vector<int>{7}));
  expect_error([&] { nt::BpeTokenizer::from_tokenizer_json(dir.file("tokenizer.json")); },
               "unsupported pre_tokenizer Sequence [Digits, ByteLevel]");
}

TEST(TokenizerByteLevelSplit, NfcNormalizer) {
  TempDir dir;
  json j = tokenizer_json(split_pre_tokenizer(kQwen2Pattern));
  j["normalizer"] = {{"type", "NFC"}};
  write_text(dir.file("tokenizer.json"), j.dump());
  auto t = nt::load_tokenizer(dir.path());
  EXPECT_EQ(t->encode("12 hi"), (std::vector<int>{0, 1, 22}));
  EXPECT_EQ(t->encode("caf\u00e9"), (std::vector<int>{25, 23, 29, 30, 31}));  // precomposed: NFC
  EXPECT_EQ(t->encode("cafe\u0301"), t->encode("caf\u00e9"));  // decomposed: normalized first

  j["normalizer"] = {{"type", "NFKC"}};
  write_text(dir.file("tokenizer.json"), j.dump());
  expect_error([&] { nt::load_tokenizer(dir.path()); }, "unsupported normalizer 'NFKC'");
}

TEST(UnicodeNfc, IsNfc) {
  for (const auto& c : load_cases()) EXPECT_TRUE(nt::is_nfc(c.text)) << json(c.text).dump();
  const std::vector<std::string> nfc = {
      "", "plain ASCII", "caf\u00e9 \u00fcber", "Vi\u1ec7t Nam", "\ud55c\uad6d\uc5b4",  // Hangul syllables
      "\u0939\u093f\u0928\u094d\u0926\u0940",                     // Hindi
      "\u091c\u093c\u0930\u093e",                                 // ज़रा: U+091C + nukta stays decomposed in NFC
      "\u09ac\u09be\u0982\u09b2\u09be",                           // Bengali with the vowel sign AA (a composition 'maybe')
      "\u05e9\u05b8\u05c1\u05dc\u05d5\u05b9\u05dd",               // Hebrew points in canonical order
      "q\u0303", "\xff invalid bytes \xfe"};
  for (const auto& s : nfc) EXPECT_TRUE(nt::is_nfc(s)) << s;
  const std::vector<std::string> not_nfc = {
      "e\u0301",                 // composes to U+00E9
      "a\u0323\u0302",           // composes to U+1EAD
      "a\u0302\u0323",           // marks out of canonical order
      "\u05e9\u05c1\u05b8",      // Hebrew shin dot (ccc 24) before qamats (ccc 18)
      "\u212b",                  // ANGSTROM SIGN -> U+00C5
      "\u095b",                  // composition exclusion -> U+091C U+093C
      "\u1100\u1161",            // Hangul jamo L V -> U+AC00
      "\uac00\u11a8",            // Hangul LV T -> U+AC01
      "\u09c7\u09be",            // Bengali -> U+09CB
      "\uf900",                  // CJK compatibility ideograph
  };
  for (const auto& s : not_nfc) EXPECT_FALSE(nt::is_nfc(s)) << s;
}

}  // namespace
