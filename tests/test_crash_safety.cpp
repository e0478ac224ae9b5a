// Crash safety of `neurontrace study`: SIGKILL the CLI while it runs, check that every file under
// a final name in the output folder is whole (only "<name>.tmp.<pid>" files may be partial), then
// resume the same command and check the result equals an uninterrupted run.
//
// The tiny model is fast, so the study runs with --threads 1 and "batch": 1 (the groups finish
// one after the other, spread over the generation) and the CLI is polled every millisecond for
// its group checkpoints. The first run is killed as soon as one checkpoint exists, the resumed
// run as soon as one more exists, a third run completes. A kill that comes too late (the run had
// already finished) is no failure: the remaining checks still run.
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "io/safetensors.h"
#include "test_support.h"
#include "util/error.h"

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string model_dir() { return nt::test::shared_path("fixtures/models/gpt2-tiny"); }

// The seed study with 24 new tokens, no steering, one sequence in flight at a time.
std::string write_study(const nt::test::TempDir& dir) {
  json cfg = json::parse(nt::test::read_text(nt::test::shared_path("experiments/seed-study.json")));
  cfg.erase("steer");
  cfg["generation"] = {{"max_new_tokens", 24}, {"batch", 1}};
  const std::string path = dir.file("study.json");
  nt::test::write_text(path, cfg.dump(1));
  return path;
}

std::vector<std::string> study_args(const std::string& config, const std::string& out) {
  return {"--threads", "1", "study", config, "-m", model_dir(), "--out", out, "-q"};
}

// Starts the CLI with stdout and stderr to `log`, stdin from /dev/null.
pid_t spawn_cli(const std::vector<std::string>& args, const std::string& log) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int in = ::open("/dev/null", O_RDONLY);
    const int out = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (in < 0 || out < 0) ::_exit(126);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(out, 2);
    std::string exe = NT_CLI_PATH;
    std::vector<std::string> copy = args;
    std::vector<char*> argv{exe.data()};
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
  return pid;
}

bool is_temp_name(const std::string& name) {
  static const std::regex temp(R"(.*\.tmp\.[0-9]+$)");
  return std::regex_match(name, temp);
}

// Group checkpoints under their final names.
int count_checkpoints(const std::string& out) {
  int n = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(out + "/groups", ec)) {
    const std::string name = e.path().filename().string();
    if (!is_temp_name(name) && e.path().extension() == ".safetensors") ++n;
  }
  return n;
}

enum class Ending { Killed, Finished };

// Runs the CLI until `at_least` checkpoints exist, then SIGKILLs it; Finished when it exited
// first (the exit status must then be 0).
Ending run_and_kill(const std::vector<std::string>& args, const std::string& out, int at_least, const std::string& log) {
  const pid_t pid = spawn_cli(args, log);
  EXPECT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(300);
  while (true) {
    int status = 0;
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the study failed:\n" << nt::test::read_text(log);
      return Ending::Finished;
    }
    if (count_checkpoints(out) >= at_least) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      // It may have exited on its own between the check and the kill.
      if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) return Ending::Killed;
      EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << nt::test::read_text(log);
      return Ending::Finished;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      ADD_FAILURE() << "the study neither finished nor wrote " << at_least << " checkpoints in 300 s";
      return Ending::Killed;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// Every file under a final name is whole: safetensors open, JSON parses, PNG ends with IEND,
// HTML with </html>, Markdown and CSV with a newline. Returns the number of temp files seen.
int check_no_partial_files(const std::string& out) {
  int temps = 0;
  for (const auto& e : fs::recursive_directory_iterator(out)) {
    if (!e.is_regular_file()) continue;
    const std::string path = e.path().string();
    const std::string name = e.path().filename().string();
    const std::string ext = e.path().extension().string();
    SCOPED_TRACE(path);
    if (is_temp_name(name)) {
      ++temps;
      continue;
    }
    if (ext == ".safetensors") {
      try {
        nt::SafetensorsFile f(path);
        EXPECT_FALSE(f.tensors().empty());
      } catch (const nt::Error& err) {
        ADD_FAILURE() << "partial safetensors: " << err.what();
      }
      continue;
    }
    const std::string text = nt::test::read_text(path);
    EXPECT_FALSE(text.empty());
    if (ext == ".json") {
      EXPECT_TRUE(json::accept(text)) << "partial JSON";
    } else if (ext == ".png") {
      static const std::string sig = "\x89PNG\r\n\x1a\n";
      static const std::string iend("\0\0\0\0IEND\xae\x42\x60\x82", 12);
      EXPECT_EQ(text.substr(0, sig.size()), sig);
      EXPECT_TRUE(ends_with(text, iend)) << "partial PNG";
    } else if (ext == ".html") {
      EXPECT_TRUE(ends_with(text, "</html>\n")) << "partial HTML";
    } else if (ext == ".md" || ext == ".csv") {
      EXPECT_TRUE(ends_with(text, "\n")) << "partial text file";
    } else {
      ADD_FAILURE() << "unexpected file in the output folder";
    }
  }
  return temps;
}

// What must not depend on interruptions: the prompts with their generations, and every table's
// neurons (labels) and occurrences.
void expect_same_study(const std::string& a_path, const std::string& b_path) {
  const json a = json::parse(nt::test::read_text(a_path));
  const json b = json::parse(nt::test::read_text(b_path));
  EXPECT_EQ(a.at("prompts"), b.at("prompts"));
  ASSERT_EQ(a.at("results").size(), b.at("results").size());
  size_t rows = 0;
  for (size_t i = 0; i < a["results"].size(); ++i) {
    const json& ra = a["results"][i];
    const json& rb = b["results"][i];
    EXPECT_EQ(ra.at("concept"), rb.at("concept"));
    EXPECT_EQ(ra.at("positions"), rb.at("positions"));
    ASSERT_EQ(ra.at("sites").size(), rb.at("sites").size());
    for (size_t j = 0; j < ra["sites"].size(); ++j) {
      const json& ta = ra["sites"][j].at("table");
      const json& tb = rb["sites"][j].at("table");
      ASSERT_EQ(ta.size(), tb.size()) << "results[" << i << "].sites[" << j << "]";
      for (size_t k = 0; k < ta.size(); ++k) {
        EXPECT_EQ(ta[k].at("label"), tb[k].at("label")) << "results[" << i << "].sites[" << j << "] row " << k;
        EXPECT_EQ(ta[k].at("occurrences"), tb[k].at("occurrences"))
            << "results[" << i << "].sites[" << j << "] row " << k;
        ++rows;
      }
    }
  }
  EXPECT_GT(rows, 0u);
}

}  // namespace

TEST(CrashSafety, StudyKilledMidRunLeavesWholeFilesAndResumesToTheSameResult) {
  nt::test::TempDir dir;
  const std::string config = write_study(dir);
  const std::string out = dir.file("out");
  const auto args = study_args(config, out);

  // 1. Killed as soon as the first group checkpoint is in place.
  const Ending first = run_and_kill(args, out, 1, dir.file("run1.log"));
  const int after_first = count_checkpoints(out);
  const int temps_first = check_no_partial_files(out);

  // 2. Resumed, and killed again once one more group is checkpointed.
  Ending second = Ending::Finished;
  int temps_second = 0;
  if (first == Ending::Killed) {
    second = run_and_kill(args, out, after_first + 1, dir.file("run2.log"));
    const std::string log = nt::test::read_text(dir.file("run2.log"));
    if (after_first > 0) {
      EXPECT_NE(log.find("resuming"), std::string::npos) << log;
    }
    temps_second = check_no_partial_files(out);
  }

  // 3. Run to completion.
  const nt::test::CliResult done = nt::test::run_cli(args);
  ASSERT_EQ(done.exit_code, 0) << done.err;
  EXPECT_EQ(count_checkpoints(out), 5);
  check_no_partial_files(out);

  // The same study, never interrupted.
  const std::string clean = dir.file("clean");
  const nt::test::CliResult ref = nt::test::run_cli(study_args(config, clean));
  ASSERT_EQ(ref.exit_code, 0) << ref.err;
  expect_same_study(out + "/study.json", clean + "/study.json");
  EXPECT_EQ(nt::test::read_text(out + "/consistency.csv"), nt::test::read_text(clean + "/consistency.csv"));

  std::printf("[ crash    ] first run %s with %d checkpoint(s) (%d temp file(s)); second run %s (%d temp file(s))\n",
              first == Ending::Killed ? "killed" : "finished before the kill", after_first, temps_first,
              first == Ending::Killed ? (second == Ending::Killed ? "killed" : "finished before the kill") : "skipped",
              temps_second);
}
