// Models by name: resolution in constructed Hugging Face cache trees.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>

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
    ::unsetenv("HF_HOME");
    // Cache lookups only: a missing entry must not be downloaded (test_hub_download covers that).
    ::setenv("HF_HUB_OFFLINE", "1", 1);
  }
  void TearDown() override {
    ::unsetenv("HF_HUB_CACHE");
    ::unsetenv("HF_HUB_OFFLINE");
  }
  std::string snapshot(const std::string& repo, const std::string& rev, bool with_config = true) {
    const std::string dir = hf_repo_dir(repo) + "/snapshots/" + rev;
    fs::create_directories(dir);
    if (with_config) write_text(dir + "/config.json", "{}");
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

TEST_F(CacheEnv, PathsAreUsedAsTheyAre) {
  EXPECT_EQ(resolve_model(tmp_.path()), tmp_.path());
  EXPECT_THROW(resolve_model("/no/such/model"), Error);
  EXPECT_THROW(resolve_model("./relative/missing"), Error);
}

}  // namespace
