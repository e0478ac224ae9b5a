#include "test_support.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace nt::test {

std::string shared_path(const std::string& relative) {
  return std::string(NT_SHARED_DIR) + "/" + relative;
}

static std::string read_fd(int fd) {
  std::string s;
  char buf[65536];
  ssize_t n;
  while ((n = ::read(fd, buf, sizeof buf)) > 0) s.append(buf, static_cast<size_t>(n));
  return s;
}

CliResult run_program(const std::string& program, const std::vector<std::string>& args) {
  int out_pipe[2], err_pipe[2];
  if (::pipe(out_pipe) != 0 || ::pipe(err_pipe) != 0) throw std::runtime_error("pipe failed");
  pid_t pid = ::fork();
  if (pid == 0) {
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    ::close(out_pipe[0]);
    ::close(err_pipe[0]);
    std::vector<char*> argv;
    std::string exe = program;
    argv.push_back(exe.data());
    std::vector<std::string> copy = args;
    for (auto& a : copy) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(exe.c_str(), argv.data());
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  CliResult r;
  std::thread t([&] { r.err = read_fd(err_pipe[0]); });
  r.out = read_fd(out_pipe[0]);
  t.join();
  ::close(out_pipe[0]);
  ::close(err_pipe[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

CliResult run_cli(const std::vector<std::string>& args) { return run_program(NT_CLI_PATH, args); }

TempDir::TempDir() {
  static std::atomic<int> counter{0};
  std::filesystem::path base = std::filesystem::path(NT_BUILD_DIR) / "tmp";
  std::filesystem::create_directories(base);
  std::string name = "t";
  name += std::to_string(::getpid());
  name += '_';
  name += std::to_string(counter++);
  path_ = (base / name).string();
  std::filesystem::remove_all(path_);
  std::filesystem::create_directories(path_);
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

void write_text(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

std::string short_sample_documents(const TempDir& tmp, int documents, int words) {
  std::ifstream in(shared_path("corpora/wiki-sample.jsonl"));
  std::ofstream out(tmp.file("short.jsonl"));
  std::string line;
  for (int doc = 0; doc < documents && std::getline(in, line); ++doc) {
    std::istringstream stream(nlohmann::json::parse(line)["text"].get<std::string>());
    std::string text, word;
    for (int w = 0; w < words && stream >> word; ++w) text += (w ? " " : "") + word;
    out << nlohmann::json{{"text", text}}.dump() << "\n";
  }
  return tmp.file("short.jsonl");
}

std::string small_seed_study(const TempDir& tmp, int max_new_tokens) {
  nlohmann::ordered_json cfg = nlohmann::ordered_json::parse(read_text(shared_path("experiments/seed-study.json")));
  cfg["generation"] = {{"max_new_tokens", max_new_tokens}};
  cfg["steer"]["controls"] = 4;
  const std::string path = tmp.file("seed-study.json");
  write_text(path, cfg.dump(2));
  return path;
}

}  // namespace nt::test
