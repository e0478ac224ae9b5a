// Models by name, fetched when absent: downloads from a Hugging Face Hub stand-in (tests/hub_server.py,
// listening on 127.0.0.1 only, answering as the real Hub does: relative 307s for small files, 401 for
// anonymous callers of missing repositories, a Xet-bridge CDN that wants a Range) into the Python
// library's cache layout, resuming cut and stalled transfers, completing snapshots the Python tools
// left partial, file lists completed from the tree listing, rejecting corrupt blobs, tokens for
// gated repositories and rejected tokens, offline mode, and the CLI end to end. Also SHA-256 against
// the NIST vectors.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "io/hf_environment.h"
#include "io/hub_download.h"
#include "io/model_resolver.h"
#include "io/model_weights.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "sae/sae_open.h"
#include "test_support.h"
#include "util/error.h"

using namespace nt;
using nt::test::read_text;
using nt::test::run_cli;
using nt::test::shared_path;
using nt::test::TempDir;
using nt::test::write_text;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

const std::string kRepo = "org/gpt2-tiny";

std::string fixture_dir() { return shared_path("fixtures/models/gpt2-tiny"); }

std::string sha256_of_file(const std::string& path) { return sha256_hex(read_text(path)); }

// The fixture weights' SHA-256: their ETag, the blob's name.
const std::string& model_sha256() {
  static const std::string h = sha256_of_file(fixture_dir() + "/model.safetensors");
  return h;
}

// `neurontrace generate -m <fixture folder> -p Hello -n 3`, run once.
const std::string& generated_from_fixture() {
  static const std::string out = [] {
    const auto r = run_cli({"generate", "-m", fixture_dir(), "-p", "Hello", "-n", "3"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.out;
  }();
  return out;
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// tests/hub_server.py as a child process; stopped (SIGTERM) by stop() or the destructor.
class HubServer {
 public:
  HubServer(const std::string& root, const std::string& log, const std::vector<std::string>& flags) {
    // The Debian interpreter scripts/setup.sh installs starts fastest; else whatever PATH has.
    const std::string python = fs::exists("/usr/bin/python3") ? "/usr/bin/python3" : "python3";
    const std::string script = (fs::path(__FILE__).parent_path() / "hub_server.py").string();
    std::vector<std::string> args = {python, script, "--root", root, "--port", "0", "--log", log};
    args.insert(args.end(), flags.begin(), flags.end());
    int out[2];
    if (::pipe(out) != 0) throw std::runtime_error("pipe failed");
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::dup2(out[1], 1);
      ::close(out[0]);
      ::close(out[1]);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execvp(argv[0], argv.data());
      ::_exit(127);
    }
    ::close(out[1]);
    // The first stdout line is the port.
    std::string line;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (true) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd pfd{out[0], POLLIN, 0};
      if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) break;
      char c;
      if (::read(out[0], &c, 1) != 1 || c == '\n') break;
      line += c;
    }
    ::close(out[0]);
    port_ = std::atoi(line.c_str());
    if (port_ <= 0) {
      stop();
      throw std::runtime_error("tests/hub_server.py did not start (first line: '" + line + "')");
    }
  }
  ~HubServer() { stop(); }
  HubServer(const HubServer&) = delete;
  HubServer& operator=(const HubServer&) = delete;

  void stop() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  pid_t pid_ = -1;
  int port_ = 0;
};

class HubDownload : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("HF_HUB_CACHE", cache_.path().c_str(), 1);
    ::setenv("HF_HOME", misc_.file("hf-home").c_str(), 1);         // no token file from the user's home
    ::setenv("HF_TOKEN_PATH", misc_.file("no-token").c_str(), 1);  // ... nor from anywhere else
    ::setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1", 1);
    ::setenv("no_proxy", "127.0.0.1,localhost", 1);  // a proxy must not see loopback requests
    ::setenv("NO_PROXY", "127.0.0.1,localhost", 1);
    for (const char* v : {"HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                          "HF_HUB_DOWNLOAD_TIMEOUT", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME"})
      ::unsetenv(v);
  }
  void TearDown() override {
    server_.reset();
    for (const char* v : {"HF_HUB_CACHE", "HF_HOME", "HF_TOKEN_PATH", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_ENDPOINT",
                          "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE",
                          "HF_HUB_DOWNLOAD_TIMEOUT", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME", "NT_TEST_TOKEN_DIR"})
      ::unsetenv(v);
  }

  void start(const std::vector<std::string>& flags = {}, const std::string& root = fixture_dir()) {
    server_ = std::make_unique<HubServer>(root, log_path(), flags);
    ::setenv("HF_ENDPOINT", server_->endpoint().c_str(), 1);
  }
  std::string log_path() const { return misc_.file("server.log"); }
  // The server's requests so far, one JSON object each.
  std::vector<json> requests() const {
    std::vector<json> out;
    if (!fs::exists(log_path())) return out;
    const std::string text = read_text(log_path());
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      if (end > start) out.push_back(json::parse(text.substr(start, end - start)));
      start = end + 1;
    }
    return out;
  }
  // Content GETs of model.safetensors at the CDN.
  std::vector<json> cdn_gets() const { return hub_requests("GET", "", "cdn"); }
  // Requests of `method` ("" for any) whose path starts with `prefix`, at the hub (or the cdn).
  std::vector<json> hub_requests(const std::string& method, const std::string& prefix,
                                 const std::string& server = "hub") const {
    std::vector<json> out;
    for (const auto& r : requests())
      if (r["server"] == server && (method.empty() || r["method"] == method) &&
          std::string(r["path"]).rfind(prefix, 0) == 0)
        out.push_back(r);
    return out;
  }
  // The Range a first, whole-file request for the weights sends: bounded by the size.
  static std::string whole_weights_range(uint64_t from = 0) {
    return "bytes=" + std::to_string(from) + "-" +
           std::to_string(fs::file_size(fixture_dir() + "/model.safetensors") - 1);
  }
  std::string repo_dir() const { return hf_repo_dir(kRepo); }
  std::string model_blob() const { return repo_dir() + "/blobs/" + model_sha256(); }

  // Every fixture file is in the snapshot, byte for byte, as a relative symlink into blobs/.
  void expect_cache_layout(const std::string& dir) {
    const std::string sha = read_text(repo_dir() + "/refs/main");
    ASSERT_EQ(sha.size(), 40u);
    EXPECT_EQ(dir, repo_dir() + "/snapshots/" + sha);
    for (const std::string f : {"config.json", "model.safetensors", "vocab.json", "merges.txt"}) {
      const fs::path p = fs::path(dir) / f;
      ASSERT_TRUE(fs::is_symlink(p)) << p;
      const std::string target = fs::read_symlink(p).string();
      EXPECT_EQ(target.rfind("../../blobs/", 0), 0u) << target;
      EXPECT_TRUE(fs::is_regular_file(fs::path(dir) / target)) << target;
      EXPECT_TRUE(read_text(p.string()) == read_text(fixture_dir() + "/" + f)) << f << " differs from the fixture";
    }
    EXPECT_EQ(fs::read_symlink(fs::path(dir) / "model.safetensors").string(),
              "../../blobs/" + model_sha256());
    EXPECT_TRUE(fs::is_regular_file(model_blob()));
    for (const auto& e : fs::directory_iterator(repo_dir() + "/blobs"))
      EXPECT_FALSE(e.path().string().ends_with(".incomplete")) << e.path();
    // The Python library's lock file for the blob (same path, so both tools can share the cache).
    EXPECT_TRUE(fs::exists(cache_.path() + "/.locks/models--org--gpt2-tiny/" +
                           model_sha256() + ".lock"));
  }

  std::string resolve_error(const std::string& name) {
    try {
      resolve_model(name);
    } catch (const Error& e) {
      const std::string m = e.what();
      EXPECT_EQ(m.find('\n'), std::string::npos) << "not one line: " << m;
      return m;
    }
    ADD_FAILURE() << "resolve_model(" << name << ") did not throw";
    return "";
  }

  TempDir cache_;
  TempDir misc_;
  std::unique_ptr<HubServer> server_;
};

TEST(Sha256, NistVectors) {
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  const std::string million(1000000, 'a');
  EXPECT_EQ(sha256_hex(million), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  // Fed in uneven pieces it is the same.
  Sha256 h;
  for (size_t i = 0, step = 1; i < million.size(); i += step, step = step % 97 + 13)
    h.update(million.data() + i, std::min(step, million.size() - i));
  EXPECT_EQ(h.hex_digest(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  EXPECT_EQ(h.hex_digest(), sha256_hex(""));  // reset after use
}

TEST(HubEnvironment, OfflineAndEndpoint) {
  for (const char* v : {"1", "true", "YES", "on"}) {
    ::setenv("HF_HUB_OFFLINE", v, 1);
    EXPECT_TRUE(hf_hub_offline()) << v;
  }
  for (const char* v : {"0", "", "false", "no"}) {
    ::setenv("HF_HUB_OFFLINE", v, 1);
    EXPECT_FALSE(hf_hub_offline()) << v;
  }
  ::setenv("HF_HUB_OFFLINE", " 1", 1);  // the Python client compares the value exactly
  EXPECT_FALSE(hf_hub_offline());
  ::unsetenv("HF_HUB_OFFLINE");
  EXPECT_FALSE(hf_hub_offline());
  // TRANSFORMERS_OFFLINE counts when HF_HUB_OFFLINE is unset or empty, as in huggingface_hub.
  ::setenv("TRANSFORMERS_OFFLINE", "1", 1);
  EXPECT_TRUE(hf_hub_offline());
  ::setenv("HF_HUB_OFFLINE", "", 1);
  EXPECT_TRUE(hf_hub_offline());
  ::setenv("HF_HUB_OFFLINE", "0", 1);
  EXPECT_FALSE(hf_hub_offline());
  ::unsetenv("HF_HUB_OFFLINE");
  ::unsetenv("TRANSFORMERS_OFFLINE");
  ::unsetenv("HF_ENDPOINT");
  EXPECT_EQ(hf_endpoint(), "https://huggingface.co");
  ::setenv("HF_ENDPOINT", "https://mirror.example/", 1);
  EXPECT_EQ(hf_endpoint(), "https://mirror.example");
  ::unsetenv("HF_ENDPOINT");
}

TEST_F(HubDownload, DownloadsIntoTheCacheLayoutAndThenNeedsNoNetwork) {
  start();
  const std::string dir = resolve_model(kRepo);
  expect_cache_layout(dir);
  // The weights came from the "CDN" (the redirect was followed) in one request with a bounded Range
  // (the Xet bridge answers 400 without one); metadata from HEADs.
  ASSERT_EQ(cdn_gets().size(), 1u);
  EXPECT_EQ(cdn_gets()[0]["range"], whole_weights_range());
  EXPECT_EQ(cdn_gets()[0]["status"], 206);
  EXPECT_EQ(hub_requests("HEAD", "/" + kRepo + "/resolve/").size(), 4u);
  // Small files: the Hub's relative 307 to /api/resolve-cache/ was followed, for the HEAD (the
  // ETag is in the final answer only) and the GET.
  EXPECT_EQ(hub_requests("HEAD", "/api/resolve-cache/models/" + kRepo + "/").size(), 3u);
  const auto small_gets = hub_requests("GET", "/api/resolve-cache/models/" + kRepo + "/");
  ASSERT_EQ(small_gets.size(), 3u);
  for (const auto& r : small_gets) EXPECT_EQ(r["status"], 206) << r.dump();

  // Blobs already in the cache are not fetched again (a snapshot lost, the blobs kept).
  fs::remove_all(repo_dir() + "/snapshots");
  fs::remove(repo_dir() + "/refs/main");
  const size_t before = requests().size();
  EXPECT_EQ(resolve_model(kRepo), dir);
  expect_cache_layout(dir);
  const auto all = requests();
  ASSERT_GT(all.size(), before);
  for (size_t i = before; i < all.size(); ++i) {  // the file list and HEADs only
    EXPECT_EQ(all[i]["server"], "hub") << all[i].dump();
    if (all[i]["method"] == "GET") {
      EXPECT_EQ(std::string(all[i]["path"]).rfind("/api/models/", 0), 0u) << all[i].dump();
    }
  }
  EXPECT_EQ(cdn_gets().size(), 1u);

  // Cached now: with the server gone it still resolves, and the weights load.
  server_->stop();
  EXPECT_EQ(resolve_model(kRepo), dir);
  ModelWeights w(dir);
  EXPECT_TRUE(w.has("wte.weight") || w.has("transformer.wte.weight"));
}

TEST_F(HubDownload, CutConnectionIsResumedWithRange) {
  start({"--cut-after", "1000000"});
  const std::string dir = resolve_model(kRepo);
  expect_cache_layout(dir);
  const auto gets = cdn_gets();
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[0]["range"], whole_weights_range());
  EXPECT_EQ(gets[1]["range"], whole_weights_range(1000000));
  EXPECT_EQ(gets[1]["status"], 206);
}

TEST_F(HubDownload, GivesUpAfterThreeAttemptsAndTheNextRunResumes) {
  start({"--cut-after", "1000000", "--cut-count", "3"});
  const std::string m = resolve_error(kRepo);
  EXPECT_TRUE(contains(m, "3 attempts")) << m;
  EXPECT_TRUE(contains(m, ".incomplete")) << m;
  EXPECT_EQ(fs::file_size(model_blob() + ".incomplete"), 3000000u);
  EXPECT_FALSE(fs::exists(model_blob()));
  EXPECT_FALSE(fs::exists(repo_dir() + "/snapshots"));  // no snapshot that looks complete
  EXPECT_FALSE(fs::exists(repo_dir() + "/refs/main"));
  ASSERT_EQ(cdn_gets().size(), 3u);
  EXPECT_EQ(cdn_gets()[2]["range"], whole_weights_range(2000000));

  const std::string dir = resolve_model(kRepo);
  expect_cache_layout(dir);
  ASSERT_EQ(cdn_gets().size(), 4u);
  EXPECT_EQ(cdn_gets()[3]["range"], whole_weights_range(3000000));
  EXPECT_EQ(cdn_gets()[3]["status"], 206);
}

TEST_F(HubDownload, RestartsFromZeroWhenTheServerIgnoresRange) {
  start({"--cut-after", "1000000", "--no-range"});
  const std::string dir = resolve_model(kRepo);
  expect_cache_layout(dir);
  const auto gets = cdn_gets();
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[1]["range"], whole_weights_range(1000000));
  EXPECT_EQ(gets[1]["status"], 200);
}

TEST_F(HubDownload, StalledTransferTimesOutAndResumes) {
  ::setenv("HF_HUB_DOWNLOAD_TIMEOUT", "1", 1);
  start({"--stall-after", "100000", "--stall-seconds", "30"});
  const auto t0 = std::chrono::steady_clock::now();
  const std::string dir = resolve_model(kRepo);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(15));
  expect_cache_layout(dir);
  const auto gets = cdn_gets();
  ASSERT_EQ(gets.size(), 2u);
  EXPECT_EQ(gets[1]["range"], whole_weights_range(100000));
}

TEST_F(HubDownload, CorruptBlobIsRejectedAndNothingIsLeft) {
  start({"--corrupt"});
  const std::string m = resolve_error(kRepo);
  EXPECT_TRUE(contains(m, "model.safetensors: checksum mismatch (expected " +
                              model_sha256() + ", got "))
      << m;
  EXPECT_FALSE(fs::exists(model_blob()));
  EXPECT_FALSE(fs::exists(model_blob() + ".incomplete"));
  EXPECT_FALSE(fs::exists(repo_dir() + "/snapshots"));
  EXPECT_FALSE(fs::exists(repo_dir() + "/refs/main"));
  EXPECT_EQ(cdn_gets().size(), 1u);  // a checksum mismatch is not retried
}

TEST_F(HubDownload, GatedRepositoryNeedsAToken) {
  start({"--require-token", "s3cret", "--valid-token", "not-granted"});
  std::string m = resolve_error(kRepo);
  EXPECT_TRUE(contains(m, "set HF_TOKEN")) << m;
  EXPECT_TRUE(contains(m, "HTTP 401")) << m;
  EXPECT_TRUE(contains(m, kRepo)) << m;

  // Through the CLI: one line naming the fix.
  const auto cli = run_cli({"generate", "-m", kRepo, "-p", "Hello", "-n", "1"});
  EXPECT_EQ(cli.exit_code, 1);
  EXPECT_TRUE(contains(cli.err, "set HF_TOKEN")) << cli.err;

  // A token the Hub knows, without access: 403 GatedRepo.
  ::setenv("HF_TOKEN", "not-granted", 1);
  m = resolve_error(kRepo);
  EXPECT_TRUE(contains(m, "the token from HF_TOKEN does not give access")) << m;
  EXPECT_TRUE(contains(m, "HTTP 403")) << m;
  // A token the Hub does not know: 401 everywhere, which is not "gated or private".
  ::setenv("HF_TOKEN", "wrong", 1);
  m = resolve_error(kRepo);
  EXPECT_TRUE(contains(m, "token rejected")) << m;
  EXPECT_FALSE(contains(m, "gated")) << m;

  ::setenv("HF_TOKEN", "s3cret", 1);
  const std::string dir = resolve_model(kRepo);
  expect_cache_layout(dir);
  // The token went to the Hub, never to the CDN the weights were redirected to.
  size_t hub_with_token = 0;
  for (const auto& r : requests()) {
    if (r["server"] == "cdn") {
      EXPECT_TRUE(r["auth"].is_null()) << r.dump();
    }
    if (r["server"] == "hub" && r["auth"] == "Bearer s3cret") ++hub_with_token;
  }
  EXPECT_GE(hub_with_token, 5u);  // API + 4 HEADs + the weights' GET
  ASSERT_EQ(cdn_gets().size(), 1u);
  // The Hub's same-host redirects for small files kept the token (and needed it: the repo is gated).
  const auto cached = hub_requests("", "/api/resolve-cache/");
  ASSERT_EQ(cached.size(), 6u);  // HEAD and GET of config.json, merges.txt, vocab.json
  for (const auto& r : cached) EXPECT_EQ(r["auth"], "Bearer s3cret") << r.dump();
}

TEST_F(HubDownload, RejectedTokenIsNamedAsSuch) {
  // A public repository: an invalid token is still refused on every route, as on the real Hub.
  start();
  ::setenv("HUGGING_FACE_HUB_TOKEN", "hf_expired", 1);
  const std::string m = resolve_error(kRepo);
  EXPECT_TRUE(contains(m, "token rejected")) << m;
  EXPECT_TRUE(contains(m, "HUGGING_FACE_HUB_TOKEN")) << m;  // where the token came from
  EXPECT_TRUE(contains(m, "HTTP 401")) << m;
  EXPECT_FALSE(contains(m, "gated")) << m;
  EXPECT_FALSE(contains(m, "no such repository")) << m;
}

TEST_F(HubDownload, TokenFileFollowsXdgCacheHomeAndExpandsVariables) {
  start({"--require-token", "s3cret"});
  // No HF_TOKEN, no HF_HOME, no HF_TOKEN_PATH: the token file is $XDG_CACHE_HOME/huggingface/token.
  ::unsetenv("HF_HOME");
  ::unsetenv("HF_TOKEN_PATH");
  ::setenv("XDG_CACHE_HOME", misc_.file("xdg").c_str(), 1);
  fs::create_directories(misc_.file("xdg/huggingface"));
  write_text(misc_.file("xdg/huggingface/token"), "s3cret\n");
  expect_cache_layout(resolve_model(kRepo));

  // HF_TOKEN_PATH with a variable in it, expanded as Python's os.path.expandvars does.
  fs::remove_all(repo_dir());
  ::unsetenv("XDG_CACHE_HOME");
  ::setenv("NT_TEST_TOKEN_DIR", misc_.file("elsewhere").c_str(), 1);
  ::setenv("HF_TOKEN_PATH", "${NT_TEST_TOKEN_DIR}/my-token", 1);
  fs::create_directories(misc_.file("elsewhere"));
  write_text(misc_.file("elsewhere/my-token"), "s3cret");
  expect_cache_layout(resolve_model(kRepo));
}

TEST_F(HubDownload, SnapshotLeftPartialGetsItsMissingFiles) {
  start();
  const std::string dir = resolve_model(kRepo);
  // As the Python tools leave an interrupted download: config and tokenizer linked, the weights
  // not yet (no link, only part of the blob).
  fs::remove(dir + "/model.safetensors");
  fs::remove(model_blob());
  write_text(model_blob() + ".incomplete", read_text(fixture_dir() + "/model.safetensors").substr(0, 1000));
  const size_t before = requests().size();
  EXPECT_EQ(resolve_model(kRepo), dir);
  expect_cache_layout(dir);
  // Only the weights were fetched, resumed where the partial blob ended.
  const auto all = requests();
  for (size_t i = before; i < all.size(); ++i) {
    const std::string path = all[i]["path"];
    EXPECT_TRUE(path.rfind("/api/models/", 0) == 0 || path.ends_with("model.safetensors")) << all[i].dump();
  }
  ASSERT_EQ(cdn_gets().size(), 2u);
  EXPECT_EQ(cdn_gets()[1]["range"], whole_weights_range(1000));

  // Offline, a partial snapshot is named as such.
  fs::remove(dir + "/model.safetensors");
  ::setenv("TRANSFORMERS_OFFLINE", "1", 1);
  const std::string m = resolve_error(kRepo);
  EXPECT_TRUE(contains(m, dir + " has no model.safetensors")) << m;
  EXPECT_TRUE(contains(m, "TRANSFORMERS_OFFLINE")) << m;
}

TEST_F(HubDownload, EmptyOrTruncatedFileListIsCompletedFromTheTree) {
  const std::vector<std::vector<std::string>> modes = {
      {"--siblings", "empty"}, {"--siblings", "missing"}, {"--siblings", "truncated"},
      {"--siblings", "empty", "--relative-links"}};
  for (auto flags : modes) {
    SCOPED_TRACE(flags.back());
    fs::remove_all(repo_dir());
    fs::remove(log_path());
    flags.insert(flags.end(), {"--tree-page-size", "1"});
    start(flags);
    expect_cache_layout(resolve_model(kRepo));
    // Four files, one a page: four pages, each after the first asked for through the Link header.
    const auto pages = hub_requests("GET", "/api/models/" + kRepo + "/tree/");
    ASSERT_EQ(pages.size(), 4u);
    EXPECT_EQ(pages[0]["query"], "recursive=true");
    EXPECT_TRUE(contains(pages[3]["query"], "cursor=3")) << pages[3].dump();
    server_.reset();
  }
}

TEST_F(HubDownload, OfflineWithoutCacheEntrySaysWhereItLookedAndHowToDownload) {
  start();
  ::setenv("HF_HUB_OFFLINE", "1", 1);
  const std::string m = resolve_error(kRepo);
  EXPECT_TRUE(contains(m, "not found")) << m;
  EXPECT_TRUE(contains(m, repo_dir())) << m;
  EXPECT_TRUE(contains(m, "huggingface-cli download " + kRepo)) << m;
  EXPECT_TRUE(contains(m, "HF_HUB_OFFLINE")) << m;
  EXPECT_TRUE(requests().empty());
}

TEST_F(HubDownload, RepositoriesThatCannotBeUsed) {
  start({"--no-safetensors", "--valid-token", "mine"});
  std::string m = resolve_error(kRepo);
  EXPECT_TRUE(contains(m, "no safetensors weights in repo org/gpt2-tiny (only .bin?)")) << m;
  EXPECT_TRUE(contains(m, "pytorch_model.bin")) << m;

  // Anonymous callers get 401 RepoNotFound from the real Hub, callers with a valid token 404.
  m = resolve_error("org/missing");
  EXPECT_TRUE(contains(m, "no such repository 'org/missing'")) << m;
  EXPECT_TRUE(contains(m, "set HF_TOKEN")) << m;
  EXPECT_TRUE(contains(m, "HTTP 401")) << m;

  ::setenv("HF_TOKEN", "mine", 1);
  m = resolve_error("org/missing");
  EXPECT_TRUE(contains(m, "no such repository 'org/missing'")) << m;
  EXPECT_TRUE(contains(m, "HTTP 404")) << m;
  ::unsetenv("HF_TOKEN");

  m = resolve_error("org/bad--name");
  EXPECT_TRUE(contains(m, "not a valid Hugging Face repository id")) << m;
}

TEST_F(HubDownload, MissingRepositoryWithABare401IsNotCalledGated) {
  // A 401 without X-Error-Code to an anonymous caller: the Python client reads it as RepoNotFound.
  start({"--bare-401"});
  const std::string m = resolve_error("org/missing");
  EXPECT_TRUE(contains(m, "no such repository 'org/missing' on the Hub, or it is private")) << m;
  EXPECT_TRUE(contains(m, "HTTP 401")) << m;
  EXPECT_FALSE(contains(m, "gated")) << m;
}

TEST_F(HubDownload, UnreachableEndpointNamesTheUrl) {
  ::setenv("HF_ENDPOINT", "http://127.0.0.1:1", 1);  // nothing listens on port 1
  const std::string m = resolve_error(kRepo);
  EXPECT_TRUE(contains(m, "http://127.0.0.1:1/api/models/org/gpt2-tiny/revision/main")) << m;
  EXPECT_TRUE(contains(m, "onnect")) << m;  // curl: "Failed to connect ..." / "Couldn't connect ..."
}

TEST_F(HubDownload, ShardedModelWithIndex) {
  // The fixture's tensors split into two shards and an index, like large checkpoints.
  TempDir root;
  for (const std::string f : {"config.json", "vocab.json", "merges.txt"})
    fs::copy_file(fixture_dir() + "/" + f, root.file(f));
  {
    SafetensorsFile st(fixture_dir() + "/model.safetensors");
    std::vector<TensorToWrite> shard[2];
    json index = {{"metadata", {{"total_size", 0}}}, {"weight_map", json::object()}};
    size_t i = 0;
    for (const auto& t : st.tensors()) {
      const int s = static_cast<int>(i++ % 2);
      shard[s].push_back({t.name, t.dtype, t.shape, {st.data(t), t.end - t.begin}});
      index["weight_map"][t.name] = "model-0000" + std::to_string(s + 1) + "-of-00002.safetensors";
    }
    write_safetensors(root.file("model-00001-of-00002.safetensors"), shard[0]);
    write_safetensors(root.file("model-00002-of-00002.safetensors"), shard[1]);
    write_text(root.file("model.safetensors.index.json"), index.dump(1));
  }
  start({}, root.path());
  const std::string dir = resolve_model(kRepo);
  for (const std::string f : {"model.safetensors.index.json", "model-00001-of-00002.safetensors",
                              "model-00002-of-00002.safetensors"}) {
    EXPECT_TRUE(fs::is_symlink(dir + "/" + f)) << f;
    EXPECT_TRUE(read_text(dir + "/" + f) == read_text(root.file(f))) << f;
  }
  EXPECT_FALSE(fs::exists(dir + "/model.safetensors"));
  EXPECT_EQ(cdn_gets().size(), 2u);
  // The sharded download generates what the fixture folder does.
  const auto by_name = run_cli({"generate", "-m", kRepo, "-p", "Hello", "-n", "3"});
  ASSERT_EQ(by_name.exit_code, 0) << by_name.err;
  EXPECT_EQ(by_name.out, generated_from_fixture());
}

TEST_F(HubDownload, CliGeneratesWithAModelItDownloads) {
  start();
  const auto r = run_cli({"generate", "-m", kRepo, "-p", "Hello", "-n", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, generated_from_fixture());
  EXPECT_FALSE(r.out.empty());
  expect_cache_layout(hf_repo_dir(kRepo) + "/snapshots/" + read_text(repo_dir() + "/refs/main"));
}

}  // namespace

// An SAE named by Hub id ORG/REPO/FOLDER (sae/sae_open.h), in a repository of several SAEs: only
// its folder's files are fetched (cfg.json and sae_weights.safetensors here; there is no
// sparsity.safetensors or params.npz), into the same cache, and the next open needs no network.
TEST_F(HubDownload, SaeByHubIdFetchesOnlyItsFiles) {
  start({"--recursive"}, shared_path("fixtures/saes/gpt2-tiny"));
  const ModelConfig model = load_model_config(fixture_dir());
  const std::string id = kRepo + "/standard-pre6/blocks.1.hook_resid_pre";
  auto sae = open_sae(id, {}, model);
  EXPECT_EQ(sae->d_sae(), 512);
  const auto heads = hub_requests("HEAD", "/" + kRepo + "/resolve/");
  std::set<std::string> files;
  for (const auto& h : heads) files.insert(std::string(h["path"]).substr(std::string(h["path"]).find("/standard-pre6/")));
  EXPECT_EQ(files, (std::set<std::string>{"/standard-pre6/blocks.1.hook_resid_pre/cfg.json",
                                          "/standard-pre6/blocks.1.hook_resid_pre/sae_weights.safetensors"}));
  server_->stop();
  EXPECT_EQ(open_sae(id, {}, model)->source(), sae->source());
  // A folder the cache lacks is refused while offline (the server is gone anyway).
  ::setenv("HF_HUB_OFFLINE", "1", 1);
  try {
    open_sae(kRepo + "/topk-v6/blocks.1.mlp.hook_post", {}, model);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("not in the Hugging Face cache"), std::string::npos) << e.what();
  }
}
