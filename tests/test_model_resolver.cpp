// Models by name: resolution in constructed Hugging Face cache trees.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

#include "io/hf_environment.h"
#include "io/model_resolver.h"
#include "test_support.h"
#include "util/error.h"

using namespace nt;
using nt::test::TempDir;
using nt::test::write_text;
namespace fs = std::filesystem;

namespace {

class CacheEnv : public ::testing::Test {
 protected:
  void SetUp() override {
    ::setenv("HF_HUB_CACHE", tmp_.path().c_str(), 1);
    for (const char* v : {"HF_HOME", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME", "HF_TOKEN_PATH"}) ::unsetenv(v);
    // Cache lookups only: a missing entry must not be downloaded (test_hub_download covers that).
    ::setenv("HF_HUB_OFFLINE", "1", 1);
  }
  void TearDown() override {
    for (const char* v : {"HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_HOME", "HUGGINGFACE_HUB_CACHE", "XDG_CACHE_HOME",
                          "HF_TOKEN_PATH", "NT_TEST_ROOT"})
      ::unsetenv(v);
  }
  std::string snapshot(const std::string& repo, const std::string& rev, bool with_config = true) {
    const std::string dir = hf_repo_dir(repo) + "/snapshots/" + rev;
    fs::create_directories(dir);
    if (with_config) {
      write_text(dir + "/config.json", "{}");
      write_text(dir + "/model.safetensors", "");  // only its presence matters here
    }
    return dir;
  }
  TempDir tmp_;
};

TEST_F(CacheEnv, CacheDirFollowsEnvironment) {
  EXPECT_EQ(hf_cache_dir(), tmp_.path());
  ::unsetenv("HF_HUB_CACHE");
  ::setenv("HF_HOME", "/x/hf", 1);
  EXPECT_EQ(hf_cache_dir(), "/x/hf/hub");
  ::unsetenv("HF_HOME");
  ::setenv("HOME", "/home/r", 1);
  EXPECT_EQ(hf_cache_dir(), "/home/r/.cache/huggingface/hub");
  EXPECT_EQ(hf_repo_dir("TinyLlama/TinyLlama-1.1B-Chat-v1.0"),
            "/home/r/.cache/huggingface/hub/models--TinyLlama--TinyLlama-1.1B-Chat-v1.0");
}

// The order and expansion of huggingface_hub/constants.py: HF_HUB_CACHE > HUGGINGFACE_HUB_CACHE >
// HF_HOME/hub > $XDG_CACHE_HOME/huggingface/hub > ~/.cache/huggingface/hub, and the token file
// beside the cache in HF_HOME.
TEST_F(CacheEnv, CacheAndTokenFollowThePythonClientsPrecedence) {
  ::setenv("HOME", "/home/r", 1);
  ::setenv("NT_TEST_ROOT", "/data", 1);
  ::setenv("HF_HUB_CACHE", "/a", 1);
  ::setenv("HUGGINGFACE_HUB_CACHE", "/b", 1);
  ::setenv("HF_HOME", "/c", 1);
  ::setenv("XDG_CACHE_HOME", "/d", 1);
  EXPECT_EQ(hf_cache_dir(), "/a");
  ::unsetenv("HF_HUB_CACHE");
  EXPECT_EQ(hf_cache_dir(), "/b");
  ::unsetenv("HUGGINGFACE_HUB_CACHE");
  EXPECT_EQ(hf_cache_dir(), "/c/hub");
  EXPECT_EQ(hf_token_path(), "/c/token");
  ::unsetenv("HF_HOME");
  EXPECT_EQ(hf_cache_dir(), "/d/huggingface/hub");
  EXPECT_EQ(hf_token_path(), "/d/huggingface/token");
  ::unsetenv("XDG_CACHE_HOME");
  EXPECT_EQ(hf_cache_dir(), "/home/r/.cache/huggingface/hub");
  EXPECT_EQ(hf_token_path(), "/home/r/.cache/huggingface/token");
  // `~` and variables, in every one of them.
  ::setenv("HF_HUB_CACHE", "~/models", 1);
  EXPECT_EQ(hf_cache_dir(), "/home/r/models");
  ::unsetenv("HF_HUB_CACHE");
  ::setenv("HUGGINGFACE_HUB_CACHE", "$NT_TEST_ROOT/hub-cache", 1);
  EXPECT_EQ(hf_cache_dir(), "/data/hub-cache");
  ::unsetenv("HUGGINGFACE_HUB_CACHE");
  ::setenv("HF_HOME", "${NT_TEST_ROOT}/hf", 1);
  EXPECT_EQ(hf_cache_dir(), "/data/hf/hub");
  ::unsetenv("HF_HOME");
  ::setenv("XDG_CACHE_HOME", "~/xdg", 1);
  EXPECT_EQ(hf_cache_dir(), "/home/r/xdg/huggingface/hub");
  ::setenv("HF_TOKEN_PATH", "~/tok", 1);
  EXPECT_EQ(hf_token_path(), "/home/r/tok");
}

TEST(PathExpansion, AsPythonsExpanduserAndExpandvars) {
  ::setenv("HOME", "/home/r/", 1);
  ::setenv("NT_TEST_ROOT", "/data", 1);
  ::unsetenv("NT_TEST_UNSET");
  EXPECT_EQ(expand_user("~"), "/home/r");
  EXPECT_EQ(expand_user("~/x"), "/home/r/x");
  EXPECT_EQ(expand_user("a/~/x"), "a/~/x");
  EXPECT_EQ(expand_user("~root/x"), "/root/x");
  EXPECT_EQ(expand_user("~no-such-user-nt/x"), "~no-such-user-nt/x");
  EXPECT_EQ(expand_vars("$NT_TEST_ROOT/x"), "/data/x");
  EXPECT_EQ(expand_vars("${NT_TEST_ROOT}x"), "/datax");
  EXPECT_EQ(expand_vars("$NT_TEST_ROOTx"), "$NT_TEST_ROOTx");  // another, unset, variable
  EXPECT_EQ(expand_vars("$NT_TEST_UNSET/x and ${NT_TEST_UNSET}"), "$NT_TEST_UNSET/x and ${NT_TEST_UNSET}");
  EXPECT_EQ(expand_vars("cost $5 ${unclosed"), "cost $5 ${unclosed");
  EXPECT_EQ(expand_vars("a$"), "a$");
  ::unsetenv("NT_TEST_ROOT");
}

TEST_F(CacheEnv, RefsMainPicksTheSnapshot) {
  snapshot("gpt2", "aaaa");
  const std::string b = snapshot("gpt2", "bbbb");
  fs::create_directories(hf_repo_dir("gpt2") + "/refs");
  write_text(hf_repo_dir("gpt2") + "/refs/main", "bbbb\n");
  EXPECT_EQ(resolve_model("gpt2"), b);
  write_text(hf_repo_dir("gpt2") + "/refs/main", "aaaa");
  EXPECT_EQ(resolve_model("gpt2"), hf_repo_dir("gpt2") + "/snapshots/aaaa");
}

TEST_F(CacheEnv, OrgAndNameAndNoRefs) {
  const std::string d = snapshot("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "0123abcd");
  EXPECT_EQ(resolve_model("TinyLlama/TinyLlama-1.1B-Chat-v1.0"), d);
}

TEST_F(CacheEnv, MissingEntryExplainsWhereItLooked) {
  try {
    resolve_model("openai-community/gpt2");
    FAIL();
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("not found"), std::string::npos) << m;
    EXPECT_NE(m.find(hf_repo_dir("openai-community/gpt2")), std::string::npos) << m;
    EXPECT_NE(m.find("download"), std::string::npos) << m;
  }
}

TEST_F(CacheEnv, RefPointingNowhereOrIncompleteSnapshot) {
  snapshot("gpt2", "aaaa", /*with_config=*/false);
  fs::create_directories(hf_repo_dir("gpt2") + "/refs");
  write_text(hf_repo_dir("gpt2") + "/refs/main", "aaaa");
  EXPECT_THROW(
      {
        try {
          resolve_model("gpt2");
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("has no config.json"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  write_text(hf_repo_dir("gpt2") + "/refs/main", "cccc");
  EXPECT_THROW(resolve_model("gpt2"), Error);
}

// A snapshot the Python tools left partial (config linked, weights not yet) is not a model yet.
TEST_F(CacheEnv, PartialSnapshotsAreNamedByTheFileTheyLack) {
  const std::string dir = hf_repo_dir("org/sharded") + "/snapshots/abcd";
  fs::create_directories(dir);
  EXPECT_EQ(missing_snapshot_file(dir), "config.json");
  write_text(dir + "/config.json", "{}");
  EXPECT_EQ(missing_snapshot_file(dir), "model.safetensors");
  write_text(dir + "/model.safetensors.index.json",
             R"({"weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}})");
  write_text(dir + "/model-00001-of-00002.safetensors", "");
  EXPECT_EQ(missing_snapshot_file(dir), "model-00002-of-00002.safetensors");
  // A link whose blob is not there is missing too.
  fs::create_symlink("../../blobs/not-yet", dir + "/model-00002-of-00002.safetensors");
  EXPECT_EQ(missing_snapshot_file(dir), "model-00002-of-00002.safetensors");
  fs::remove(dir + "/model-00002-of-00002.safetensors");
  write_text(dir + "/model-00002-of-00002.safetensors", "");
  EXPECT_EQ(missing_snapshot_file(dir), "");
  try {  // offline, the message names the file
    fs::remove(dir + "/model-00001-of-00002.safetensors");
    resolve_model("org/sharded");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir + " has no model-00001-of-00002.safetensors"), std::string::npos)
        << e.what();
  }
}

TEST_F(CacheEnv, PathsAreUsedAsTheyAre) {
  EXPECT_EQ(resolve_model(tmp_.path()), tmp_.path());
  EXPECT_THROW(resolve_model("/no/such/model"), Error);
  EXPECT_THROW(resolve_model("./relative/missing"), Error);
}

}  // namespace
