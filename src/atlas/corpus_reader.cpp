#include "atlas/corpus_reader.h"

#include <zlib.h>

#include <cstring>
#include <nlohmann/json.hpp>

#include "io/sha256.h"
#include "util/error.h"
#include "util/message_text.h"

namespace nt {

// Lines of one file through zlib (gzip'd or plain), without their "\n" (and a "\r" before it).
class CorpusReader::LineSource {
 public:
  explicit LineSource(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
    if (!file_) throw Error(quote_for_message(path, 300) + ": cannot open (" + std::strerror(errno) + ")");
    gzbuffer(file_, 1 << 17);
  }
  ~LineSource() { gzclose(file_); }
  LineSource(const LineSource&) = delete;
  LineSource& operator=(const LineSource&) = delete;

  // The next line into `line`; false at the end of the file. Throws on a read error.
  bool next(std::string& line) {
    line.clear();
    bool any = false;
    for (;;) {
      if (pos_ == len_ && !fill()) {
        if (!any) return false;
        break;  // a last line without its "\n"
      }
      any = true;
      const char* start = buf_ + pos_;
      const void* nl = std::memchr(start, '\n', len_ - pos_);
      const size_t n = nl ? static_cast<size_t>(static_cast<const char*>(nl) - start) : len_ - pos_;
      line.append(start, n);
      pos_ += n;
      if (nl) {
        ++pos_;
        break;
      }
    }
    ++line_number_;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return true;
  }
  int64_t line_number() const { return line_number_; }
  const std::string& path() const { return path_; }

 private:
  bool fill() {
    const int n = gzread(file_, buf_, sizeof buf_);
    if (n < 0) {
      int code = 0;
      const char* what = gzerror(file_, &code);
      throw Error(quote_for_message(path_, 300) + ": cannot read (" + (what ? what : "zlib error") + ")");
    }
    pos_ = 0;
    len_ = static_cast<size_t>(n);
    return n > 0;
  }
  std::string path_;
  gzFile file_;
  char buf_[1 << 16];
  size_t pos_ = 0, len_ = 0;
  int64_t line_number_ = 0;
};

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

CorpusReader::CorpusReader(CorpusOptions options) : options_(std::move(options)) {
  if (options_.files.empty()) throw Error("no corpus file given");
  if (options_.text_field.empty()) throw Error("--text-field: must not be empty");
  for (const auto& f : options_.files) LineSource check(f);  // fail before anything runs
}

CorpusReader::~CorpusReader() = default;

bool CorpusReader::open_next_file() {
  source_.reset();
  if (file_index_ >= options_.files.size()) return false;
  const std::string& path = options_.files[file_index_++];
  jsonl_ = ends_with(path, ".jsonl") || ends_with(path, ".jsonl.gz");
  source_ = std::make_unique<LineSource>(path);
  return true;
}

std::optional<CorpusDocument> CorpusReader::next() {
  for (;;) {
    if (!source_ && !open_next_file()) return std::nullopt;
    auto doc = jsonl_ ? next_jsonl() : next_plain();
    if (doc) {
      doc->index = next_index_++;
      return doc;
    }
    source_.reset();
  }
}

std::optional<CorpusDocument> CorpusReader::next_jsonl() {
  std::string line;
  while (source_->next(line)) {
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::string problem;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) problem = "not valid JSON";
    else if (!j.is_object()) problem = "not a JSON object";
    else if (!j.contains(options_.text_field)) problem = "no field " + quote_for_message(options_.text_field);
    else if (!j[options_.text_field].is_string()) problem = "field " + quote_for_message(options_.text_field) + " is not a string";
    const std::string where = escape_for_message(source_->path(), 300) + ":" + std::to_string(source_->line_number());
    if (!problem.empty()) {
      if (!options_.skip_bad_lines) throw Error(where + ": " + problem + " (--skip-bad-lines skips such lines)");
      ++bad_lines_;
      continue;
    }
    return CorpusDocument{0, source_->path(), source_->line_number(), j[options_.text_field].get<std::string>()};
  }
  return std::nullopt;
}

std::optional<CorpusDocument> CorpusReader::next_plain() {
  std::string line;
  CorpusDocument doc;
  bool started = false;
  while (source_->next(line)) {
    if (line.empty()) {
      if (started) return doc;
      continue;
    }
    if (!started) {
      doc.file = source_->path();
      doc.line = source_->line_number();
      started = true;
    } else {
      doc.text += '\n';
    }
    doc.text += line;
  }
  if (started) return doc;
  return std::nullopt;
}

std::string corpus_fingerprint(const CorpusOptions& options) {
  nlohmann::json files = nlohmann::json::array();
  for (const auto& path : options.files) {
    gzFile f = gzopen(path.c_str(), "rb");
    if (!f) throw Error(quote_for_message(path, 300) + ": cannot open (" + std::strerror(errno) + ")");
    Sha256 sha;
    std::vector<char> buf(1 << 16);
    int64_t size = 0;
    int n = 0;
    while ((n = gzread(f, buf.data(), static_cast<unsigned>(buf.size()))) > 0) {
      sha.update(buf.data(), static_cast<size_t>(n));
      size += n;
    }
    gzclose(f);
    if (n < 0) throw Error(quote_for_message(path, 300) + ": cannot read");
    const auto slash = path.find_last_of('/');
    files.push_back({{"name", slash == std::string::npos ? path : path.substr(slash + 1)},
                     {"bytes", size},
                     {"sha256", sha.hex_digest()}});
  }
  return nlohmann::json{{"files", files}, {"text_field", options.text_field}}.dump();
}

}  // namespace nt
