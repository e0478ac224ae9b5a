#pragma once
// Documents of a text corpus, streamed in order from one or more files, each plain or gzip'd
// (zlib reads both, so ".gz" is not needed in the name):
//   * JSON Lines (a file whose name ends in ".jsonl" or ".jsonl.gz"): one object per line, the
//     document is its string field `text_field` ("text" by default); blank lines are skipped;
//   * anything else: plain text, documents separated by one or more blank lines, a document's lines
//     joined with "\n".
// A document's index counts every document of every file, in order, from 0: the identity used by
// shards, checkpoints and records. A malformed JSONL line (not JSON, not an object, no string field)
// throws nt::Error "<file>:<line>: <problem>"; with skip_bad_lines it is counted and skipped.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace nt {

struct CorpusDocument {
  int64_t index = 0;  // over the whole corpus
  std::string file;
  int64_t line = 0;   // first line of the document in its file (1-based)
  std::string text;
};

struct CorpusOptions {
  std::vector<std::string> files;
  std::string text_field = "text";
  bool skip_bad_lines = false;
};

class CorpusReader {
 public:
  // Throws nt::Error when there is no file or a file cannot be opened.
  explicit CorpusReader(CorpusOptions options);
  ~CorpusReader();
  CorpusReader(const CorpusReader&) = delete;
  CorpusReader& operator=(const CorpusReader&) = delete;

  // The next document, or nullopt at the end of the last file.
  std::optional<CorpusDocument> next();
  int64_t bad_lines() const { return bad_lines_; }  // skipped malformed lines so far

 private:
  class LineSource;
  bool open_next_file();
  std::optional<CorpusDocument> next_jsonl();
  std::optional<CorpusDocument> next_plain();

  CorpusOptions options_;
  size_t file_index_ = 0;
  std::unique_ptr<LineSource> source_;
  bool jsonl_ = false;
  int64_t next_index_ = 0;
  int64_t bad_lines_ = 0;
};

// What identifies a corpus in an atlas: its files' names, sizes and SHA-256 of their contents, and
// the text field, as JSON. Two scans of the same corpus give equal fingerprints.
std::string corpus_fingerprint(const CorpusOptions& options);

}  // namespace nt
