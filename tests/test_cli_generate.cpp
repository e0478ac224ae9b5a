// `neurontrace generate` end to end, and its one-line errors for bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <cstring>
#include <random>

#include "io/safetensors.h"
#include "test_support.h"

using namespace nt;
using nt::test::run_cli;
using nt::test::shared_path;
using nt::test::TempDir;
using nt::test::write_text;
namespace fs = std::filesystem;

namespace {

const std::string kTiny = shared_path("fixtures/models/gpt2-tiny");

void expect_one_line_error(const test::CliResult& r, const std::string& needle) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_TRUE(r.out.empty()) << r.out;
  EXPECT_NE(r.err.find(needle), std::string::npos) << "stderr: " << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.find('\n'), r.err.size() - 1) << "not one line: " << r.err;
}

// A tiny GPT-2 folder with the real tokenizer and random weights; `edit` may change the tensors.
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  DType dtype = DType::F32;
};
std::vector<TensorSpec> tiny_tensors(int layers, int64_t C, int64_t V, int64_t P) {
  std::vector<TensorSpec> t = {{"wte.weight", {V, C}}, {"wpe.weight", {P, C}}, {"ln_f.weight", {C}}, {"ln_f.bias", {C}}};
  for (int l = 0; l < layers; ++l) {
    std::string p = "h." + std::to_string(l) + ".";
    for (auto s : std::vector<TensorSpec>{{"ln_1.weight", {C}}, {"ln_1.bias", {C}}, {"attn.c_attn.weight", {C, 3 * C}},
                                          {"attn.c_attn.bias", {3 * C}}, {"attn.c_proj.weight", {C, C}},
                                          {"attn.c_proj.bias", {C}}, {"ln_2.weight", {C}}, {"ln_2.bias", {C}},
                                          {"mlp.c_fc.weight", {C, 4 * C}}, {"mlp.c_fc.bias", {4 * C}},
                                          {"mlp.c_proj.weight", {4 * C, C}}, {"mlp.c_proj.bias", {C}}}) {
      s.name = p + s.name;
      t.push_back(s);
    }
  }
  return t;
}
void write_model(const std::string& dir, const std::vector<TensorSpec>& specs, int layers = 1, int C = 8) {
  fs::create_directories(dir);
  nlohmann::json cfg = {{"model_type", "gpt2"}, {"n_layer", layers}, {"n_embd", C}, {"n_head", 2},
                        {"n_positions", 16}, {"vocab_size", 50257}, {"layer_norm_epsilon", 1e-5}};
  write_text(dir + "/config.json", cfg.dump());
  fs::copy_file(kTiny + "/vocab.json", dir + "/vocab.json");
  fs::copy_file(kTiny + "/merges.txt", dir + "/merges.txt");
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  std::vector<std::vector<uint8_t>> buffers;
  std::vector<TensorToWrite> tw;
  for (const auto& s : specs) {
    size_t n = 1;
    for (auto d : s.shape) n *= static_cast<size_t>(d);
    std::vector<uint8_t> bytes(n * dtype_size(s.dtype));
    if (s.dtype == DType::F32) {
      auto* f = reinterpret_cast<float*>(bytes.data());
      for (size_t i = 0; i < n; ++i) f[i] = nd(rng);
    }
    buffers.push_back(std::move(bytes));
    tw.push_back({s.name, s.dtype, s.shape, buffers.back()});
  }
  write_safetensors(dir + "/model.safetensors", tw, {{"format", "pt"}});
}

TEST(CliGenerate, GreedyMatchesGoldenContinuation) {
  auto r = run_cli({"generate", "-m", kTiny, "-p", "Hello, my name is", "-n", "20", "--no-stop", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.err.empty()) << r.err;  // nothing on stderr when it is not a terminal
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["prompt_ids"], nlohmann::json({15496, 11, 616, 1438, 318}));
  std::ifstream in(shared_path("fixtures/models/gpt2-tiny/goldens/goldens.json"));
  auto g = nlohmann::json::parse(in);
  EXPECT_EQ(j[0]["generated_ids"], g["prompts"][0]["greedy_ids"]);
}

TEST(CliGenerate, PlainTextAndPromptsFile) {
  TempDir tmp;
  write_text(tmp.file("p.json"), R"({"prompts": ["Hello", "The quick brown fox"]})");
  auto r = run_cli({"generate", "-m", kTiny, "--prompts", tmp.file("p.json"), "-n", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("=== prompt 0 ===\nHello"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("=== prompt 1 ===\nThe quick brown fox"), std::string::npos) << r.out;
}

TEST(CliGenerate, HelpAndVersion) {
  auto r = run_cli({"--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("generate"), std::string::npos);
  r = run_cli({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("neurontrace"), std::string::npos);
  r = run_cli({"generate", "--help"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_NE(r.out.find("--temperature"), std::string::npos);
}

TEST(CliGenerateErrors, MissingModelDirectory) {
  expect_one_line_error(run_cli({"generate", "-m", "/nonexistent/model", "-p", "hi"}), "/nonexistent/model");
}

TEST(CliGenerateErrors, MissingConfig) {
  TempDir tmp;
  expect_one_line_error(run_cli({"generate", "-m", tmp.path(), "-p", "hi"}), "config.json");
}

TEST(CliGenerateErrors, MalformedConfig) {
  TempDir tmp;
  write_text(tmp.file("config.json"), "{\"model_type\": \"gpt2\", ");
  expect_one_line_error(run_cli({"generate", "-m", tmp.path(), "-p", "hi"}), "config.json: malformed JSON");
}

TEST(CliGenerateErrors, UnknownModelType) {
  TempDir tmp;
  write_text(tmp.file("config.json"), R"({"model_type": "bert"})");
  expect_one_line_error(run_cli({"generate", "-m", tmp.path(), "-p", "hi"}), "unknown model_type 'bert'");
}

TEST(CliGenerateErrors, TruncatedSafetensors) {
  TempDir tmp;
  write_model(tmp.path(), tiny_tensors(1, 8, 50257, 16));
  fs::resize_file(tmp.file("model.safetensors"), fs::file_size(tmp.file("model.safetensors")) - 100);
  expect_one_line_error(run_cli({"generate", "-m", tmp.path(), "-p", "hi"}), "model.safetensors");
}

TEST(CliGenerateErrors, HeaderLengthPastEndOfFile) {
  TempDir tmp;
  write_model(tmp.path(), tiny_tensors(1, 8, 50257, 16));
  std::string bytes(8, '\0');
  uint64_t n = 1ull << 40;
  std::memcpy(bytes.data(), &n, 8);
  write_text(tmp.file("model.safetensors"), bytes + "{}");
  expect_one_line_error(run_cli({"generate", "-m", tmp.path(), "-p", "hi"}), "model.safetensors");
}

TEST(CliGenerateErrors, MalformedHeaderJson) {
  TempDir tmp;
  write_model(tmp.path(), tiny_tensors(1, 8, 50257, 16));
  std::string header = "{\"a\": [1, 2";
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  write_text(tmp.file("model.safetensors"), bytes + header);
  expect_one_line_error(run_cli({"generate", "-m", tmp.path(), "-p", "hi"}), "model.safetensors");
}

std::string raw_safetensors(const std::string& header, size_t data_bytes) {
  std::string bytes(8, '\0');
  uint64_t n = header.size();
  std::memcpy(bytes.data(), &n, 8);
  return bytes + header + std::string(data_bytes, '\0');
}

TEST(CliGenerateErrors, DataOffsetsOutOfRange) {
  TempDir tmp;
  write_model(tmp.path(), tiny_tensors(1, 8, 50257, 16));
  write_text(tmp.file("model.safetensors"),
             raw_safetensors(R"({"ln_f.weight":{"dtype":"F32","shape":[8],"data_offsets":[0,32]}})", 16));
  expect_one_line_error(run_cli({"generate", "-m", tmp.path(), "-p", "hi"}), "ln_f.weight");
}

TEST(CliGenerateErrors, OverlappingTensors) {
  TempDir tmp;
  write_model(tmp.path(), tiny_tensors(1, 8, 50257, 16));
  write_text(tmp.file("model.safetensors"),
             raw_safetensors(R"({"a":{"dtype":"F32","shape":[8],"data_offsets":[0,32]},)"
                             R"("b":{"dtype":"F32","shape":[8],"data_offsets":[16,48]}})",
                             48));
  expect_one_line_error(run_cli({"generate", "-m", tmp.path(), "-p", "hi"}), "overlap");
}

TEST(CliGenerateErrors, MissingTensor) {
  TempDir tmp;
  auto specs = tiny_tensors(1, 8, 50257, 16);
  std::erase_if(specs, [](const TensorSpec& s) { return s.name == "h.0.mlp.c_fc.bias"; });
  write_model(tmp.path(), specs);
  expect_one_line_error(run_cli({"generate", "-m", tmp.path(), "-p", "hi"}), "missing tensor 'h.0.mlp.c_fc.bias'");
}

TEST(CliGenerateErrors, WrongShape) {
  TempDir tmp;
  auto specs = tiny_tensors(1, 8, 50257, 16);
  for (auto& s : specs)
    if (s.name == "h.0.attn.c_proj.weight") s.shape = {8, 9};
  write_model(tmp.path(), specs);
  expect_one_line_error(run_cli({"generate", "-m", tmp.path(), "-p", "hi"}), "h.0.attn.c_proj.weight' has shape [8, 9]");
}

TEST(CliGenerateErrors, UnsupportedDtype) {
  TempDir tmp;
  auto specs = tiny_tensors(1, 8, 50257, 16);
  for (auto& s : specs)
    if (s.name == "ln_f.bias") s.dtype = DType::I32;
  write_model(tmp.path(), specs);
  expect_one_line_error(run_cli({"generate", "-m", tmp.path(), "-p", "hi"}), "unsupported dtype");
}

TEST(CliGenerateErrors, PromptLongerThanContext) {
  std::string text;
  for (int i = 0; i < 200; ++i) text += " word";
  expect_one_line_error(run_cli({"generate", "-m", kTiny, "-p", text}), "more than the model's context of 128");
}

TEST(CliGenerateErrors, EmptyPrompt) {
  expect_one_line_error(run_cli({"generate", "-m", kTiny, "-p", ""}), "prompt 0 is empty");
}

TEST(CliGenerateErrors, BadSamplingFlags) {
  expect_one_line_error(run_cli({"generate", "-m", kTiny, "-p", "hi", "--top-p", "0"}), "--top-p");
  expect_one_line_error(run_cli({"generate", "-m", kTiny, "-p", "hi", "-n", "-1"}), "--max-new-tokens: must be >= 0");
  expect_one_line_error(run_cli({"generate", "-m", kTiny, "-p", "hi", "--top-k", "-3"}), "--top-k: must be >= 0 (got -3)");
}

TEST(CliGenerate, SmallRandomModelRuns) {
  TempDir tmp;
  write_model(tmp.path(), tiny_tensors(1, 8, 50257, 16));
  auto r = run_cli({"generate", "-m", tmp.path(), "-p", "hi", "-n", "4"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

}  // namespace
