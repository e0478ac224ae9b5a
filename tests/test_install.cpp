// The installed package: `cmake --install` of this build into a temporary prefix, then
// examples/consumer (find_package(neurontrace) + neurontrace::core) configured and built against
// that prefix alone, and its greedy continuation of a fixture prompt checked against the goldens.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "test_support.h"

namespace {

using nt::test::run_program;

void expect_ok(const nt::test::CliResult& r, const std::string& step) {
  ASSERT_EQ(r.exit_code, 0) << step << "\nstdout:\n" << r.out << "\nstderr:\n" << r.err;
}

TEST(Install, ConsumerBuildsAgainstInstalledPackageAndMatchesGoldens) {
  nt::test::TempDir tmp;
  const std::string prefix = tmp.file("prefix"), build = tmp.file("consumer-build");
  expect_ok(run_program(NT_CMAKE_COMMAND, {"--install", NT_BUILD_DIR, "--prefix", prefix}), "install");
  ASSERT_TRUE(std::filesystem::exists(prefix + "/bin/neurontrace"));
  ASSERT_TRUE(std::filesystem::exists(prefix + "/include/neurontrace/runtime/session.h"));
  expect_ok(run_program(NT_CMAKE_COMMAND, {"-S", std::string(NT_SOURCE_DIR) + "/examples/consumer", "-B", build,
                                           "-DCMAKE_PREFIX_PATH=" + prefix, "-DCMAKE_BUILD_TYPE=Release",
                                           "-DCMAKE_CXX_COMPILER=" NT_CXX_COMPILER}),
            "configure the consumer");
  expect_ok(run_program(NT_CMAKE_COMMAND, {"--build", build}), "build the consumer");

  const auto goldens = nlohmann::json::parse(
      nt::test::read_text(nt::test::shared_path("fixtures/models/gpt2-tiny/goldens/goldens.json")));
  const auto& prompt = goldens["prompts"][0];
  const auto r = run_program(build + "/greedy", {nt::test::shared_path("fixtures/models/gpt2-tiny"),
                                                 prompt["text"].get<std::string>(), "20"});
  expect_ok(r, "run the consumer");
  std::istringstream first_line(r.out.substr(0, r.out.find('\n')));
  std::vector<int> ids;
  for (int id; first_line >> id;) ids.push_back(id);
  EXPECT_EQ(ids, prompt["greedy_ids"].get<std::vector<int>>());
}

}  // namespace
