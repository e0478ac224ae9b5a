#pragma once
// Helpers shared by the test programs: where the fixtures are, running the CLI, temp folders.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace nt::test {

// Absolute path of something under ../shared (fixtures, models, experiments).
std::string shared_path(const std::string& relative);

struct CliResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs the built neurontrace binary with `args` (no shell; stdin closed), capturing both streams.
CliResult run_cli(const std::vector<std::string>& args);
// The same for another program (an absolute path).
CliResult run_program(const std::string& program, const std::vector<std::string>& args);

// A fresh empty folder under the build tree's tmp/, removed by the destructor.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void write_text(const std::string& path, const std::string& text);
std::string read_text(const std::string& path);
nlohmann::json read_json(const std::string& path);

// The seed study (../shared/experiments/seed-study.json: 45 prompts in 5 groups) with short
// generations and 4 steering controls so a test stays quick, written into `tmp`; returns its path.
std::string small_seed_study(const TempDir& tmp, int max_new_tokens = 8);

// The sample corpus's (../shared/corpora/wiki-sample.jsonl) first `documents` documents cut to
// their first `words` words, written into `tmp` as JSONL; returns its path. Its documents are
// thousands of tokens long: a sharded scan of a short slice of it would give all to one shard.
std::string short_sample_documents(const TempDir& tmp, int documents, int words);

}  // namespace nt::test
