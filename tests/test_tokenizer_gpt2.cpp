// GPT-2 byte-level BPE: test vectors, goldens, round trips, tokenizer.json, gpt2-wiki, errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "test_support.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/tokenizer.h"
#include "util/error.h"

namespace {

using nlohmann::json;
using nt::BpeTokenizer;
using nt::test::shared_path;
using nt::test::TempDir;
using nt::test::write_text;

struct Case {
  std::string text;
  std::vector<int> ids;
};

std::vector<Case> load_cases() {
  std::ifstream in(shared_path("fixtures/tokenizers/gpt2/tests.jsonl"));
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

std::string gpt2_dir() { return shared_path("fixtures/tokenizers/gpt2"); }

const BpeTokenizer& gpt2() {
  static auto tok = BpeTokenizer::from_vocab_merges(gpt2_dir() + "/vocab.json", gpt2_dir() + "/merges.txt");
  return *tok;
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

std::string ids_str(const std::vector<int>& ids) {
  std::ostringstream ss;
  for (int id : ids) ss << ' ' << id;
  return ss.str();
}

// Runs `f`, expecting nt::Error whose message is one line and contains `needle`.
template <class F>
void expect_error(F f, const std::string& needle) {
  try {
    f();
    ADD_FAILURE() << "expected nt::Error containing '" << needle << "'";
  } catch (const nt::Error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
    EXPECT_FALSE(msg.empty());
  }
}

std::vector<std::string> extra_texts() {
  return {
      "",
      " ",
      "Hello world",
      "👋🏽 family: 👨‍👩‍👧‍👦, flag: 🏳️‍🌈",
      "日本語のテキスト、中文文本。한국어 텍스트",
      "ZWJ\u200Dhere and NBSP\u00A0there\u2028line sep",
      "tabs\t\t\tand\r\nCRLF\n\n\n   trailing   ",
      "it's we've they'll I'd you're I'm don't 'S 'T",
      "numbers 1234567890 3.14159 -42 1e10 ١٢٣",
      "<|endoftext|> is just text here",
      std::string("nul\0byte", 8),
  };
}

TEST(TokenizerGpt2, TestVectorsMatchExactly) {
  const auto cases = load_cases();
  ASSERT_EQ(cases.size(), 46u);
  int failures = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    std::vector<int> got = gpt2().encode(cases[i].text);
    if (got != cases[i].ids) {
      ++failures;
      ADD_FAILURE() << "case " << i << " text=" << json(cases[i].text).dump()
                    << "\n  expected:" << ids_str(cases[i].ids) << "\n  got:     " << ids_str(got);
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST(TokenizerGpt2, VocabAndSpecialTokens) {
  const auto& t = gpt2();
  EXPECT_EQ(t.vocab_size(), 50257);
  EXPECT_EQ(t.eos_id(), 50256);
  EXPECT_EQ(t.bos_id(), 50256);
  EXPECT_FALSE(t.add_bos());
  EXPECT_EQ(t.token_bytes(50256), "<|endoftext|>");
  EXPECT_EQ(t.token_bytes(198), "\n");
  EXPECT_EQ(t.token_bytes(262), " the");
  EXPECT_EQ(t.token_bytes(15496), "Hello");
  // Special tokens are not parsed in text.
  std::vector<int> ids = t.encode("<|endoftext|>");
  EXPECT_GT(ids.size(), 1u);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 50256), 0);
}

TEST(TokenizerGpt2, GoldenPromptsEncodeExactly) {
  std::ifstream in(shared_path("fixtures/models/gpt2-tiny/goldens/goldens.json"));
  ASSERT_TRUE(in.good());
  json g = json::parse(in);
  auto tok = nt::load_tokenizer(shared_path("fixtures/models/gpt2-tiny"));
  ASSERT_EQ(g["prompts"].size(), 4u);
  for (size_t i = 0; i < g["prompts"].size(); ++i) {
    const json& p = g["prompts"][i];
    std::string text = p["text"].get<std::string>();
    EXPECT_EQ(tok->encode(text), p["input_ids"].get<std::vector<int>>())
        << "prompt " << i << " " << json(text).dump();
  }
}

TEST(TokenizerGpt2, DecodeRoundTrips) {
  std::vector<std::string> texts = extra_texts();
  for (const auto& c : load_cases()) texts.push_back(c.text);
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int> ids = gpt2().encode(texts[i]);
    EXPECT_EQ(gpt2().decode(ids), texts[i]) << "text " << i << " " << json(texts[i]).dump();
    std::string joined;
    for (int id : ids) joined += gpt2().token_bytes(id);
    EXPECT_EQ(joined, texts[i]) << "text " << i;
  }
  // A token holding half of an emoji decodes to bytes, not replacement characters.
  std::vector<int> ids = gpt2().encode("🦙");
  ASSERT_GT(ids.size(), 1u);
  EXPECT_EQ(gpt2().token_bytes(ids[0]).size() < 4, true);
}

TEST(TokenizerGpt2, InvalidUtf8IsEncodedAsBytesAndRoundTrips) {
  const std::vector<std::string> bad = {
      std::string("\xff"),
      std::string("abc\xff\xfe def"),
      std::string("caf\xc3"),                 // truncated 2-byte sequence at the end
      std::string("\xe2\x82 x \xf0\x9f\xa6"),  // truncated 3- and 4-byte sequences
      std::string("ok \xc0\xaf overlong, \xed\xa0\x80 surrogate"),
  };
  for (const auto& t : bad) {
    std::vector<int> ids = gpt2().encode(t);
    EXPECT_FALSE(ids.empty());
    EXPECT_EQ(gpt2().decode(ids), t) << hex(t);
  }
  // Valid parts are pre-tokenized as usual.
  std::vector<int> a = gpt2().encode("Hello world");
  std::vector<int> b = gpt2().encode(std::string("Hello world\xff"));
  ASSERT_GE(b.size(), a.size());
  EXPECT_TRUE(std::equal(a.begin(), a.end(), b.begin()));
}

TEST(TokenizerGpt2, TokenizerJsonMatchesVocabMerges) {
  std::ifstream vin(gpt2_dir() + "/vocab.json");
  json vocab = json::parse(vin);
  std::ifstream min(gpt2_dir() + "/merges.txt");
  std::string line;
  json merges_str = json::array(), merges_arr = json::array();
  std::getline(min, line);  // #version
  while (std::getline(min, line)) {
    if (line.empty()) continue;
    merges_str.push_back(line);
    size_t sp = line.find(' ');
    merges_arr.push_back(json::array({line.substr(0, sp), line.substr(sp + 1)}));
  }
  ASSERT_EQ(merges_str.size(), 50000u);

  auto make = [&](const json& merges, bool eos_only_in_added) {
    json v = vocab;
    if (eos_only_in_added) v.erase("<|endoftext|>");
    json j;
    j["version"] = "1.0";
    j["truncation"] = nullptr;
    j["padding"] = nullptr;
    j["added_tokens"] = json::array({{{"id", 50256},
                                      {"content", "<|endoftext|>"},
                                      {"single_word", false},
                                      {"lstrip", false},
                                      {"rstrip", false},
                                      {"normalized", true},
                                      {"special", true}}});
    j["normalizer"] = nullptr;
    j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false},
                          {"trim_offsets", true}, {"use_regex", true}};
    j["post_processor"] = {{"type", "ByteLevel"}, {"add_prefix_space", true},
                           {"trim_offsets", false}, {"use_regex", true}};
    j["decoder"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true},
                    {"use_regex", true}};
    j["model"] = {{"type", "BPE"},          {"dropout", nullptr},
                  {"unk_token", nullptr},   {"continuing_subword_prefix", ""},
                  {"end_of_word_suffix", ""}, {"fuse_unk", false},
                  {"byte_fallback", false}, {"vocab", v},
                  {"merges", merges}};
    return j.dump();
  };

  std::vector<std::string> texts = extra_texts();
  for (const auto& c : load_cases()) texts.push_back(c.text);

  struct Variant {
    const char* name;
    const json* merges;
    bool eos_only_in_added;
  };
  for (const Variant& var : {Variant{"string merges", &merges_str, false},
                             Variant{"array merges", &merges_arr, false},
                             Variant{"eos only in added_tokens", &merges_str, true}}) {
    SCOPED_TRACE(var.name);
    TempDir dir;
    write_text(dir.file("tokenizer.json"), make(*var.merges, var.eos_only_in_added));
    auto tok = nt::load_tokenizer(dir.path());
    EXPECT_EQ(tok->vocab_size(), 50257);
    EXPECT_EQ(tok->eos_id(), 50256);
    EXPECT_EQ(tok->bos_id(), 50256);
    EXPECT_EQ(tok->token_bytes(50256), "<|endoftext|>");
    for (size_t i = 0; i < texts.size(); ++i) {
      // tokenizer.json's added tokens are found in text, as tokenizers does (vocab.json +
      // merges.txt has none: there "<|endoftext|>" is plain text).
      std::vector<int> expected = gpt2().encode(texts[i]);
      const std::string eot = "<|endoftext|>";
      if (texts[i].starts_with(eot)) {
        expected = gpt2().encode(texts[i].substr(eot.size()));
        expected.insert(expected.begin(), 50256);
      }
      EXPECT_EQ(tok->encode(texts[i]), expected) << "text " << i;
      EXPECT_EQ(tok->decode(tok->encode(texts[i])), texts[i]) << "text " << i;
    }
  }
}

TEST(TokenizerGpt2, TokenizerJsonUnsupportedIsReported) {
  TempDir dir;
  const std::string path = dir.file("tokenizer.json");
  write_text(path, R"({"model": {"type": "Unigram", "vocab": []}})");
  expect_error([&] { nt::load_tokenizer(dir.path()); }, path);
  expect_error([&] { nt::load_tokenizer(dir.path()); }, "Unigram");
  expect_error([&] { BpeTokenizer::from_tokenizer_json(path); }, "Unigram");

  // SentencePiece-style BPE (Llama's tokenizer.json) is not byte-level.
  write_text(path, R"({"normalizer": null, "pre_tokenizer": {"type": "Metaspace"},
                      "model": {"type": "BPE", "vocab": {"a": 0}, "merges": []}})");
  expect_error([&] { BpeTokenizer::from_tokenizer_json(path); }, "Metaspace");

  write_text(path, "{\"model\": ");
  expect_error([&] { BpeTokenizer::from_tokenizer_json(path); }, path + ": malformed JSON");
}

TEST(TokenizerGpt2, TokenizerJsonSmallOptions) {
  TempDir dir;
  const std::string path = dir.file("tokenizer.json");
  const std::string body = R"("model": {"type": "BPE", "vocab": {"\u0120": 0, "h": 1, "i": 2, "\u0120h": 3,
      "\u0120hi": 4}, "merges": [["\u0120", "h"], "\u0120h i"]}, "normalizer": null)";
  write_text(path, "{" + body + R"(, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": true}})");
  auto tok = BpeTokenizer::from_tokenizer_json(path);
  EXPECT_EQ(tok->encode("hi"), (std::vector<int>{4}));
  EXPECT_EQ(tok->encode(" hi"), (std::vector<int>{4}));
  EXPECT_EQ(tok->eos_id(), -1);
  EXPECT_EQ(tok->vocab_size(), 5);

  write_text(path, "{" + body + R"(, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false}})");
  EXPECT_EQ(BpeTokenizer::from_tokenizer_json(path)->encode("hi"), (std::vector<int>{1, 2}));

  write_text(path, "{" + body + R"(, "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": "yes"}})");
  expect_error([&] { BpeTokenizer::from_tokenizer_json(path); }, path + ": unexpected structure");
}

TEST(TokenizerGpt2, UnusableTokenizerJsonFallsBackToVocabMerges) {
  TempDir dir;
  write_text(dir.file("tokenizer.json"), R"({"model": {"type": "WordPiece"}})");
  write_text(dir.file("vocab.json"), nt::test::read_text(gpt2_dir() + "/vocab.json"));
  write_text(dir.file("merges.txt"), nt::test::read_text(gpt2_dir() + "/merges.txt"));
  auto tok = nt::load_tokenizer(dir.path());
  EXPECT_EQ(tok->encode("Hello world"), (std::vector<int>{15496, 995}));
}

TEST(TokenizerGpt2, Gpt2WikiModel) {
  auto tok = nt::load_tokenizer(shared_path("models/gpt2-wiki"));
  EXPECT_EQ(tok->vocab_size(), 8192);
  EXPECT_EQ(tok->eos_id(), 8191);
  EXPECT_EQ(tok->bos_id(), 8191);
  EXPECT_FALSE(tok->add_bos());
  EXPECT_EQ(tok->token_bytes(8191), "<|endoftext|>");

  std::vector<int> ids = tok->encode("The country");
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(tok->token_bytes(ids[0]), "The");
  EXPECT_EQ(tok->token_bytes(ids[1]), " country");
  EXPECT_EQ(tok->decode(ids), "The country");

  std::vector<std::string> texts = extra_texts();
  for (const auto& c : load_cases()) texts.push_back(c.text);
  for (size_t i = 0; i < texts.size(); ++i) {
    std::vector<int> e = tok->encode(texts[i]);
    for (int id : e) {
      EXPECT_GE(id, 0);
      EXPECT_LT(id, 8191);
    }
    EXPECT_EQ(tok->decode(e), texts[i]) << "text " << i;
  }
}

TEST(TokenizerGpt2, MergesFileFormatTolerance) {
  TempDir dir;
  // Tiny vocab: bytes h, e, l, o plus merges; no trailing newline, CRLF, blank trailing lines.
  write_text(dir.file("vocab.json"),
             R"({"h": 0, "e": 1, "l": 2, "o": 3, "he": 4, "ll": 5, "hell": 6, "hello": 7})");
  for (const std::string& merges : {std::string("#version: 0.2\nh e\nl l\nhe ll\nhell o"),
                                   std::string("#version: 0.2\r\nh e\r\nl l\r\nhe ll\r\nhell o\r\n"),
                                   std::string("h e\nl l\nhe ll\nhell o\n\n\n"),
                                   std::string("#version: 0.2\nh e\nl l\nq z\nhe ll\nhell o\n")}) {
    write_text(dir.file("merges.txt"), merges);
    auto tok = BpeTokenizer::from_vocab_merges(dir.file("vocab.json"), dir.file("merges.txt"));
    EXPECT_EQ(tok->encode("hello"), (std::vector<int>{7})) << json(merges).dump();
    EXPECT_EQ(tok->encode("hole"), (std::vector<int>{0, 3, 2, 1}));
    EXPECT_EQ(tok->eos_id(), -1);
    EXPECT_EQ(tok->bos_id(), -1);
    // A byte with no token and no <|endoftext|> to stand in for it.
    expect_error([&] { tok->encode("z"); }, "0x7A");
  }
}

TEST(TokenizerGpt2, ErrorsNameTheFile) {
  expect_error([] { nt::load_tokenizer("/nonexistent/model/dir"); }, "/nonexistent/model/dir");

  TempDir empty;
  expect_error([&] { nt::load_tokenizer(empty.path()); }, empty.path() + ": no tokenizer found");

  TempDir dir;
  const std::string vocab = dir.file("vocab.json"), merges = dir.file("merges.txt");
  write_text(merges, "#version: 0.2\nh e\n");
  write_text(vocab, R"({"h": 0, "e": 1,)");
  expect_error([&] { nt::load_tokenizer(dir.path()); }, vocab + ": malformed JSON");
  write_text(vocab, R"(["h", "e"])");
  expect_error([&] { nt::load_tokenizer(dir.path()); }, vocab);
  write_text(vocab, R"({"h": 0, "e": "one"})");
  expect_error([&] { nt::load_tokenizer(dir.path()); }, vocab);
  write_text(vocab, R"({"h": 0, "e": -5})");
  expect_error([&] { nt::load_tokenizer(dir.path()); }, vocab);

  write_text(vocab, R"({"h": 0, "e": 1, "he": 2})");
  write_text(merges, "#version: 0.2\nh e\nhe\n");
  expect_error([&] { nt::load_tokenizer(dir.path()); }, merges + ":3:");
  write_text(merges, "#version: 0.2\nh e\n\na b c\n");
  expect_error([&] { nt::load_tokenizer(dir.path()); }, merges + ":4:");

  expect_error([&] { BpeTokenizer::from_vocab_merges(vocab, dir.file("missing.txt")); },
               dir.file("missing.txt"));
  expect_error([&] { BpeTokenizer::from_vocab_merges(dir.file("missing.json"), merges); },
               dir.file("missing.json"));

  expect_error([] { gpt2().decode({15496, 50257}); }, "50257");
  expect_error([] { gpt2().decode({-1}); }, "-1");
  expect_error([] { gpt2().token_bytes(1 << 30); }, "out of range");
}

TEST(TokenizerGpt2, LongRunsAndSpeed) {
  // Pathological pieces: long runs without a pre-tokenizer split must not go quadratic.
  for (const std::string& t : {std::string(200000, ' '), std::string(200000, 'a'),
                               std::string(100000, '\n') + "x"}) {
    std::vector<int> ids = gpt2().encode(t);
    EXPECT_EQ(gpt2().decode(ids), t);
  }
  std::string cjk;
  for (int i = 0; i < 50000; ++i) cjk += "日本語";
  EXPECT_EQ(gpt2().decode(gpt2().encode(cjk)), cjk);

  // About 1 MB of mixed text.
  std::string text;
  const auto cases = load_cases();
  int k = 0;
  while (text.size() < (1u << 20)) {
    text += cases[static_cast<size_t>(k) % cases.size()].text;
    text += " word" + std::to_string(k++) + ". ";
  }
  auto t0 = std::chrono::steady_clock::now();
  std::vector<int> ids = gpt2().encode(text);
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("encoded %zu bytes -> %zu tokens in %.3f s (%.1f MB/s)\n", text.size(), ids.size(),
              secs, text.size() / 1e6 / secs);
  EXPECT_LT(secs, 5.0);  // well under 1 s in Release; loose for sanitizer builds
  EXPECT_EQ(gpt2().decode(ids), text);
}

TEST(TokenizerGpt2, ConcurrentEncodeIsConsistent) {
  const auto cases = load_cases();
  std::vector<std::vector<int>> expected;
  for (const auto& c : cases) expected.push_back(c.ids);
  auto fresh = BpeTokenizer::from_vocab_merges(gpt2_dir() + "/vocab.json", gpt2_dir() + "/merges.txt");
  std::vector<int> bad(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int rep = 0; rep < 20; ++rep)
        for (size_t i = 0; i < cases.size(); ++i)
          if (fresh->encode(cases[i].text) != expected[i]) ++bad[static_cast<size_t>(t)];
    });
  for (auto& th : threads) th.join();
  for (int b : bad) EXPECT_EQ(b, 0);
}

}  // namespace
