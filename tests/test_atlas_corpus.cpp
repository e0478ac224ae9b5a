// The atlas's corpus reader (JSONL and plain text, gzip'd or not, several files, bad lines) and the
// cutting of documents into windows.
#include <gtest/gtest.h>
#include <zlib.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "atlas/corpus_reader.h"
#include "atlas/document_windows.h"
#include "test_support.h"
#include "util/error.h"

namespace {

std::vector<nt::CorpusDocument> read_all(const nt::CorpusOptions& o, int64_t* bad = nullptr) {
  nt::CorpusReader reader(o);
  std::vector<nt::CorpusDocument> docs;
  while (auto d = reader.next()) docs.push_back(*d);
  if (bad) *bad = reader.bad_lines();
  return docs;
}

// The sample's texts, read here with a JSON parser line by line.
std::vector<std::string> sample_texts() {
  std::ifstream in(nt::test::shared_path("corpora/wiki-sample.jsonl"));
  std::vector<std::string> texts;
  for (std::string line; std::getline(in, line);) texts.push_back(nlohmann::json::parse(line)["text"]);
  return texts;
}

TEST(CorpusReader, JsonlAndPlainTextGiveTheSameDocuments) {
  const auto texts = sample_texts();
  ASSERT_EQ(texts.size(), 50u);
  const auto jsonl = read_all({{nt::test::shared_path("corpora/wiki-sample.jsonl")}});
  const auto plain = read_all({{nt::test::shared_path("corpora/wiki-sample.txt")}});
  ASSERT_EQ(jsonl.size(), 50u);
  ASSERT_EQ(plain.size(), 50u);
  for (size_t i = 0; i < texts.size(); ++i) {
    EXPECT_EQ(jsonl[i].text, texts[i]);
    EXPECT_EQ(plain[i].text, texts[i]);
    EXPECT_EQ(jsonl[i].index, static_cast<int64_t>(i));
    EXPECT_EQ(jsonl[i].line, static_cast<int64_t>(i + 1));
  }
}

TEST(CorpusReader, GzipAndSeveralFilesNumberDocumentsInOrder) {
  nt::test::TempDir dir;
  const std::string gz = dir.file("a.jsonl.gz");
  gzFile f = gzopen(gz.c_str(), "wb");
  const std::string body = "{\"text\": \"one\"}\n\n{\"body\": \"two\", \"text\": \"x\"}\n";
  gzwrite(f, body.data(), static_cast<unsigned>(body.size()));
  gzclose(f);
  nt::test::write_text(dir.file("b.txt"), "three\nlines\n\n\n\nfour");
  const auto docs = read_all({{gz, dir.file("b.txt")}});
  ASSERT_EQ(docs.size(), 4u);
  EXPECT_EQ(docs[0].text, "one");
  EXPECT_EQ(docs[1].text, "x");
  EXPECT_EQ(docs[1].line, 3);
  EXPECT_EQ(docs[2].text, "three\nlines");
  EXPECT_EQ(docs[3].text, "four");
  EXPECT_EQ(docs[3].index, 3);
  EXPECT_EQ(read_all({{gz}, "body", true}).at(0).text, "two") << "--text-field";
}

TEST(CorpusReader, BadLinesNameFileAndLineOrAreCounted) {
  nt::test::TempDir dir;
  const std::string path = dir.file("c.jsonl");
  nt::test::write_text(path, "{\"text\": \"ok\"}\n{\"text\": 3}\n[1]\n{bad\n{\"title\": \"t\"}\n{\"text\": \"end\"}\n");
  try {
    read_all({{path}});
    FAIL() << "accepted";
  } catch (const nt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("c.jsonl:2: field 'text' is not a string"), std::string::npos) << e.what();
  }
  int64_t bad = 0;
  const auto docs = read_all({{path}, "text", true}, &bad);
  EXPECT_EQ(bad, 4);
  ASSERT_EQ(docs.size(), 2u);
  EXPECT_EQ(docs[1].text, "end");
  EXPECT_THROW(nt::CorpusReader({{dir.file("missing.jsonl")}}), nt::Error);
}

TEST(DocumentWindows, CoverEveryTokenOnceWithLeftContext) {
  for (int n : {0, 1, 31, 32, 33, 100, 257}) {
    const auto windows = nt::document_windows(n, 32);
    int next = 0;
    for (const auto& w : windows) {
      EXPECT_EQ(w.first_new, next);
      EXPECT_LE(w.end - w.start, 32);
      EXPECT_EQ(w.first_new - w.start, next == 0 ? 0 : 8);
      next = w.end;
    }
    EXPECT_EQ(next, n);
  }
  EXPECT_THROW(nt::document_windows(10, 1), nt::Error);
}

}  // namespace
