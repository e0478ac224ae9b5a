// libFuzzer target: nt::CorpusReader on arbitrary bytes, read as JSONL and as plain text (zlib
// reads them as gzip when they start like gzip). Only nt::Error may escape; documents are numbered
// in order, JSONL documents come from whole lines and plain-text documents have no empty line.
#include <cstdint>
#include <string>
#include <string_view>

#include "atlas/corpus_reader.h"
#include "fuzz_common.h"

namespace {

using nt::fuzz::fail;

void read_all(const std::string& path, bool jsonl, bool skip) {
  nt::CorpusReader reader({{path}, "text", skip});
  int64_t expected = 0, last_line = 0;
  while (auto doc = reader.next()) {
    if (doc->index != expected++) fail("documents out of order");
    if (doc->line <= last_line) fail("document lines not increasing");
    last_line = doc->line;
    if (!jsonl && (doc->text.empty() || doc->text.find("\n\n") != std::string::npos)) fail("empty line in a plain document");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static nt::fuzz::ScratchDir dir("corpus_reader");
  static const std::string jsonl = dir.file("corpus.jsonl"), plain = dir.file("corpus.txt");
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  nt::fuzz::write_bytes(jsonl, bytes);
  nt::fuzz::write_bytes(plain, bytes);
  nt::fuzz::expect_only_nt_errors([&] { read_all(jsonl, true, false); });
  nt::fuzz::expect_only_nt_errors([&] { read_all(jsonl, true, true); });
  nt::fuzz::expect_only_nt_errors([&] { read_all(plain, false, false); });
  return 0;
}
