// Sparse autoencoders (src/sae/): loading every fixture layout (SAELens pre-6 and 6.x folders, Gemma
// Scope params.npz stored and deflated, w_* keys), encoding and decoding against the fixtures'
// independent goldens (fixtures README section 6), hand-computed cases for what no fixture covers
// (gated, topk with decoder-norm rescaling, constant_norm_rescale), one-line refusals of bad SAEs,
// the check against a model, and latent steering against the steering goldens.
#include <gtest/gtest.h>
#include <zip.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "io/safetensors.h"
#include "io/model_config.h"
#include "sae/npy.h"
#include "sae/npz.h"
#include "sae/sae.h"
#include "sae/sae_steering.h"
#include "runtime/generator.h"
#include "runtime/session.h"
#include "test_support.h"
#include "util/error.h"

using namespace nt;
using nt::test::read_json;
using nt::test::shared_path;
using nt::test::TempDir;
using nt::test::write_text;
using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kSaes = shared_path("fixtures/saes/gpt2-tiny");
const std::string kTiny = shared_path("fixtures/models/gpt2-tiny");
constexpr float kTol = 1e-5f;

json sae_goldens() { return read_json(kSaes + "/goldens/goldens.json"); }

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// An SAE folder written from parts: cfg.json text and named tensors.
struct Tensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};
void write_sae(const std::string& dir, const std::string& cfg, const std::map<std::string, Tensor>& tensors) {
  fs::create_directories(dir);
  write_text(dir + "/cfg.json", cfg);
  std::vector<TensorToWrite> out;
  for (const auto& [name, t] : tensors)
    out.push_back({name, DType::F32, t.shape,
                   {reinterpret_cast<const uint8_t*>(t.values.data()), t.values.size() * sizeof(float)}});
  write_safetensors(dir + "/sae_weights.safetensors", out);
}

std::string v6_cfg(int d_in, int d_sae, const std::string& architecture, const std::string& extra = "") {
  return "{\"d_in\": " + std::to_string(d_in) + ", \"d_sae\": " + std::to_string(d_sae) +
         ", \"dtype\": \"float32\", \"apply_b_dec_to_input\": true, \"normalize_activations\": \"none\"" + extra +
         ", \"metadata\": {\"sae_lens_version\": \"6.18.0\", \"hook_name\": \"blocks.0.hook_resid_post\"}, "
         "\"architecture\": \"" + architecture + "\"}";
}

void expect_near_all(const std::vector<float>& got, const std::vector<float>& want, float tol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  float worst = 0;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i)
    if (!(std::fabs(got[i] - want[i]) <= worst)) worst = std::fabs(got[i] - want[i]), at = i;
  EXPECT_LE(worst, tol) << what << ": max |diff| at element " << at << " (" << got[at] << " vs " << want[at] << ")";
}

// ---- encoding and decoding against the goldens -----------------------------------------------

struct GoldenCase {
  std::string id;
  std::string path;  // relative to saes/gpt2-tiny
};

void check_against_goldens(const Sae& sae, const std::string& id, const json& spec, float recons_scale = 1.0f,
                           float input_scale = 1.0f) {
  for (int k = 0; k < 4; ++k) {
    const std::string what = id + " prompt " + std::to_string(k);
    SafetensorsFile g(kSaes + "/goldens/" + id + ".prompt_" + std::to_string(k) + ".safetensors");
    std::vector<float> x = g.read_f32(g.get("sae_in"));
    for (float& v : x) v *= input_scale;
    const int rows = static_cast<int>(g.get("sae_in").shape[0]);
    SaeEncoding enc;
    sae.encode(x.data(), rows, enc);
    expect_near_all(enc.pre, g.read_f32(g.get("hidden_pre")), kTol, what + " hidden_pre");
    const std::vector<float> want = g.read_f32(g.get("feature_acts"));
    expect_near_all(enc.acts, want, kTol, what + " feature_acts");
    const json& l0 = spec["prompts"][k]["l0"];
    for (int r = 0; r < rows; ++r) {
      int active = 0;
      for (int i = 0; i < sae.d_sae(); ++i) {
        const size_t at = static_cast<size_t>(r) * sae.d_sae() + i;
        EXPECT_EQ(enc.acts[at] > 0, want[at] > 0) << what << " token " << r << " latent " << i;
        active += enc.acts[at] > 0;
      }
      EXPECT_EQ(active, l0[r].get<int>()) << what << " L0 of token " << r;
    }
    std::vector<float> recons(static_cast<size_t>(rows) * sae.d_in());
    sae.decode(enc.acts.data(), rows, enc.norm_coeff.data(), recons.data());
    std::vector<float> want_recons = g.read_f32(g.get("sae_recons"));
    for (float& v : want_recons) v *= recons_scale;
    expect_near_all(recons, want_recons, kTol, what + " sae_recons");
  }
}

TEST(SaeGoldens, EveryFixtureSaeMatches) {
  const json g = sae_goldens();
  for (const auto& [id, spec] : g["saes"].items()) {
    auto sae = Sae::load(kSaes + "/" + spec["path"].get<std::string>());
    EXPECT_EQ(sae->d_in(), spec["d_in"].get<int>()) << id;
    EXPECT_EQ(sae->d_sae(), spec["d_sae"].get<int>()) << id;
    EXPECT_EQ(sae_architecture_name(sae->config().architecture), spec["architecture"].get<std::string>()) << id;
    EXPECT_EQ(sae->config().hook_name, spec["hook_name"].get<std::string>()) << id;
    EXPECT_EQ(sae->config().apply_b_dec_to_input, spec["apply_b_dec_to_input"].get<bool>()) << id;
    if (id == "topk") {
      EXPECT_EQ(sae->config().k, spec["k"].get<int>());
    }
    check_against_goldens(*sae, id, spec);
  }
}

TEST(SaeGoldens, Bf16EncoderStaysClose) {
  const json g = sae_goldens();
  SaeLoadOptions o;
  o.encoder_format = WeightFormat::BF16;
  auto sae = Sae::load(kSaes + "/standard-pre6/blocks.1.hook_resid_pre", o);
  SafetensorsFile f(kSaes + "/goldens/standard.prompt_0.safetensors");
  const std::vector<float> x = f.read_f32(f.get("sae_in"));
  SaeEncoding enc;
  sae->encode(x.data(), static_cast<int>(f.get("sae_in").shape[0]), enc);
  expect_near_all(enc.pre, f.read_f32(f.get("hidden_pre")), 0.05f, "bf16 hidden_pre");
}

// Gemma Scope archives saved with savez_compressed, and Gemma Scope 2's lowercase w_* keys.
void rewrite_npz(const std::string& from, const std::string& to, bool deflate, bool lowercase) {
  NpzArrays arrays = read_npz(from);
  int err = 0;
  zip_t* z = zip_open(to.c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
  ASSERT_NE(z, nullptr);
  std::vector<std::string> blobs;
  blobs.reserve(arrays.size());
  for (const auto& [name, a] : arrays) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_text(a.shape) + ", }";
    while ((10 + header.size() + 1) % 64) header += ' ';
    header += '\n';
    std::string blob = std::string("\x93NUMPY\x01\x00", 8);
    blob += static_cast<char>(header.size() & 0xff);
    blob += static_cast<char>(header.size() >> 8);
    blob += header;
    blob.append(reinterpret_cast<const char*>(a.data.data()), a.data.size() * sizeof(float));
    blobs.push_back(std::move(blob));
    zip_source_t* src = zip_source_buffer(z, blobs.back().data(), blobs.back().size(), 0);
    std::string member = (lowercase && name.rfind("W_", 0) == 0 ? "w_" + name.substr(2) : name) + ".npy";
    const zip_int64_t index = zip_file_add(z, member.c_str(), src, ZIP_FL_ENC_UTF_8);
    ASSERT_GE(index, 0);
    zip_set_file_compression(z, static_cast<zip_uint64_t>(index), deflate ? ZIP_CM_DEFLATE : ZIP_CM_STORE, 0);
  }
  ASSERT_EQ(zip_close(z), 0);
}

TEST(SaeGoldens, GemmaScopeCompressedAndLowercaseKeys) {
  const json g = sae_goldens();
  const std::string npz = kSaes + "/" + g["saes"]["gemma-scope"]["path"].get<std::string>();
  const std::string file = fs::is_directory(npz) ? npz + "/params.npz" : npz;
  TempDir tmp;
  const std::string dir = tmp.file("gemma-scope-2b-pt-res/layer_0/width_256/average_l0_31");
  fs::create_directories(dir);
  rewrite_npz(file, dir + "/params.npz", true, true);
  {  // the members really are deflated
    int err = 0;
    zip_t* z = zip_open((dir + "/params.npz").c_str(), ZIP_RDONLY, &err);
    ASSERT_NE(z, nullptr);
    zip_stat_t st;
    ASSERT_EQ(zip_stat(z, "w_enc.npy", 0, &st), 0);
    EXPECT_EQ(st.comp_method, ZIP_CM_DEFLATE);
    EXPECT_LT(st.comp_size, st.size);
    zip_discard(z);
  }
  auto sae = Sae::load(dir + "/params.npz");
  EXPECT_EQ(sae->config().hook_name, "blocks.0.hook_resid_post");
  EXPECT_FALSE(sae->config().apply_b_dec_to_input);
  check_against_goldens(*sae, "gemma-scope", g["saes"]["gemma-scope"]);
}

// expected_average_only_in: x is multiplied by the release's factor s before encoding, the output
// divided by it; so x = sae_in / s gives the golden latents and the golden reconstruction / s.
TEST(SaeNormalization, ExpectedAverageFoldsTheGivenFactor) {
  const json g = sae_goldens();
  TempDir tmp;
  const std::string src = kSaes + "/standard-pre6/blocks.1.hook_resid_pre";
  json cfg = json::parse(nt::test::read_text(src + "/cfg.json"));
  cfg["normalize_activations"] = true;  // the pre-6 boolean: expected_average_only_in
  fs::create_directories(tmp.file("sae"));
  write_text(tmp.file("sae/cfg.json"), cfg.dump());
  fs::copy_file(src + "/sae_weights.safetensors", tmp.file("sae/sae_weights.safetensors"));

  const std::string refusal = error_of([&] { Sae::load(tmp.file("sae")); });
  EXPECT_NE(refusal.find("expected_average_only_in"), std::string::npos) << refusal;
  EXPECT_NE(refusal.find("scaling factor"), std::string::npos) << refusal;

  SaeLoadOptions o;
  o.norm_scaling_factor = 2.0;
  auto sae = Sae::load(tmp.file("sae"), o);
  EXPECT_EQ(sae->config().normalization, SaeNormalization::ExpectedAverageOnlyIn);
  check_against_goldens(*sae, "standard", g["saes"]["standard"], 0.5f, 0.5f);

  const std::string extra = error_of([&] { Sae::load(src, o); });
  EXPECT_NE(extra.find("normalize_activations is 'none'"), std::string::npos) << extra;
}

// ---- hand-computed cases ------------------------------------------------------------------------

TEST(SaeHandComputed, Gated) {
  TempDir tmp;
  // d_in 2, d_sae 3. W_enc [2, 3]; W_dec [3, 2].
  write_sae(tmp.file("g"), v6_cfg(2, 3, "gated"),
            {{"W_enc", {{2, 3}, {1, 0, 2, 0, 1, -1}}},
             {"W_dec", {{3, 2}, {1, 0, 0, 1, 1, 1}}},
             {"b_dec", {{2}, {0.5f, -0.5f}}},
             {"b_gate", {{3}, {0, -1, 0.5f}}},
             {"b_mag", {{3}, {0.1f, 0.2f, -3}}},
             {"r_mag", {{3}, {0, std::log(2.0f), 0}}}});
  auto sae = Sae::load(tmp.file("g"));
  // x = (1.5, 1.5): sae_in (1, 2), p = (1, 2, 0); gates 1, 1, 0.5 all open; mags 1.1, 4.2, -3.
  // x = (0.5, 0):   sae_in (0, .5), p = (0, .5, -.5); gates 0, -.5, 0 all shut; mags .1, 1.2, -3.5.
  // x = (1.5, -.5): sae_in (1, 0), p = (1, 0, 2); gates 1, -1, 2.5; mags 1.1, .2, -1.
  const std::vector<float> x = {1.5f, 1.5f, 0.5f, 0.0f, 1.5f, -0.5f};
  SaeEncoding enc;
  sae->encode(x.data(), 3, enc);
  expect_near_all(enc.pre, {1.1f, 4.2f, -3, 0.1f, 1.2f, -3.5f, 1.1f, 0.2f, -1}, 1e-6f, "gated pre");
  expect_near_all(enc.acts, {1.1f, 4.2f, 0, 0, 0, 0, 1.1f, 0, 0}, 1e-6f, "gated acts");
  std::vector<float> recons(6);
  sae->decode(enc.acts.data(), 3, nullptr, recons.data());
  expect_near_all(recons, {1.6f, 3.7f, 0.5f, -0.5f, 1.6f, -0.5f}, 1e-6f, "gated recons");
}

TEST(SaeHandComputed, TopKWithAndWithoutDecoderNormRescaling) {
  // pre = (1, 0.95, 0.9); decoder norms 1, 2, 5. k = 1.
  const std::map<std::string, Tensor> w = {{"W_enc", {{2, 3}, {1, 0, 0.9f, 0, 1, 0}}},
                                           {"W_dec", {{3, 2}, {1, 0, 0, 2, 3, 4}}},
                                           {"b_dec", {{2}, {0, 0}}},
                                           {"b_enc", {{3}, {0, 0, 0}}}};
  const std::vector<float> x = {1.0f, 0.95f};
  TempDir tmp;
  for (bool rescale : {false, true}) {
    const std::string dir = tmp.file(rescale ? "r" : "n");
    write_sae(dir, v6_cfg(2, 3, "topk", std::string(", \"k\": 1, \"rescale_acts_by_decoder_norm\": ") +
                                            (rescale ? "true" : "false")),
              w);
    auto sae = Sae::load(dir);
    SaeEncoding enc;
    sae->encode(x.data(), 1, enc);
    std::vector<float> recons(2);
    sae->decode(enc.acts.data(), 1, nullptr, recons.data());
    expect_near_all(enc.pre, {1.0f, 0.95f, 0.9f}, 1e-6f, "topk pre");
    if (rescale) {  // ranked by pre * norm = (1, 1.9, 4.5): latent 2 with 4.5, decoded as 4.5 / 5 * (3, 4)
      expect_near_all(enc.acts, {0, 0, 4.5f}, 1e-6f, "rescaled acts");
      expect_near_all(recons, {2.7f, 3.6f}, 1e-6f, "rescaled recons");
    } else {
      expect_near_all(enc.acts, {1.0f, 0, 0}, 1e-6f, "plain acts");
      expect_near_all(recons, {1.0f, 0.0f}, 1e-6f, "plain recons");
    }
  }
}

TEST(SaeHandComputed, ConstantNormRescale) {
  TempDir tmp;
  std::string cfg = v6_cfg(2, 2, "standard");
  cfg.replace(cfg.find("\"none\""), 6, "\"constant_norm_rescale\"");
  write_sae(tmp.file("c"), cfg,
            {{"W_enc", {{2, 2}, {1, 0, 0, 1}}},
             {"W_dec", {{2, 2}, {1, 0, 0, 1}}},
             {"b_dec", {{2}, {1, 0}}},
             {"b_enc", {{2}, {0, -0.5f}}}});
  auto sae = Sae::load(tmp.file("c"));
  // x = (3, 4): c = sqrt(2) / 5; sae_in = x c - b_dec = (-0.151472, 1.131371); pre = (-0.151472, 0.631371);
  // recons = ((0, 0.631371) + (1, 0)) / c = (3.535534, 2.232233).
  const std::vector<float> x = {3, 4};
  SaeEncoding enc;
  sae->encode(x.data(), 1, enc);
  expect_near_all(enc.pre, {-0.15147186f, 0.63137085f}, 1e-6f, "pre");
  expect_near_all(enc.acts, {0, 0.63137085f}, 1e-6f, "acts");
  std::vector<float> recons(2);
  sae->decode(enc.acts.data(), 1, enc.norm_coeff.data(), recons.data());
  expect_near_all(recons, {3.5355339f, 2.2322330f}, 2e-6f, "recons");
}

// ---- cfg.json mapping ---------------------------------------------------------------------------

TEST(SaeConfigParsing, BothGenerations) {
  SaeConfig pre6 = parse_sae_config(nt::test::read_text(kSaes + "/standard-pre6/blocks.1.hook_resid_pre/cfg.json"), "a");
  EXPECT_TRUE(pre6.pre6);
  EXPECT_EQ(pre6.architecture, SaeArchitecture::Standard);
  EXPECT_EQ(pre6.hook_name, "blocks.1.hook_resid_pre");
  EXPECT_EQ(pre6.normalization, SaeNormalization::None);

  SaeConfig v6 = parse_sae_config(nt::test::read_text(kSaes + "/topk-v6/blocks.1.mlp.hook_post/cfg.json"), "b");
  EXPECT_FALSE(v6.pre6);
  EXPECT_EQ(v6.architecture, SaeArchitecture::TopK);
  EXPECT_EQ(v6.k, 8);
  EXPECT_FALSE(v6.rescale_acts_by_decoder_norm);
  EXPECT_EQ(v6.hook_name, "blocks.1.mlp.hook_post");

  // pre-6 spellings: hook_point, activation_fn with its k, boolean normalization, defaults.
  SaeConfig old = parse_sae_config(
      R"({"d_in": 8, "d_sae": 32, "hook_point": "blocks.3.hook_resid_pre", "hook_point_layer": 3,
          "activation_fn": "topk", "activation_fn_kwargs": {"k": 4}, "normalize_activations": null})",
      "c");
  EXPECT_EQ(old.architecture, SaeArchitecture::TopK);
  EXPECT_EQ(old.k, 4);
  EXPECT_EQ(old.hook_name, "blocks.3.hook_resid_pre");
  EXPECT_TRUE(old.apply_b_dec_to_input);
  EXPECT_EQ(old.normalization, SaeNormalization::None);

  // 6.x topk without k: SAELens' default 100.
  SaeConfig dflt = parse_sae_config(v6_cfg(8, 200, "topk"), "d");
  EXPECT_EQ(dflt.k, 100);
}

TEST(SaeConfigParsing, RefusalsNameTheFileAndTheProblem) {
  struct Case {
    std::string cfg, expected;
  };
  const std::vector<Case> cases = {
      {"{\"d_in\": 8", "cfg.json: malformed JSON"},
      {"[1, 2]", "must be a JSON object"},
      {R"({"d_sae": 8, "hook_name": "blocks.0.hook_resid_post"})", "missing 'd_in'"},
      {R"({"d_in": -8, "d_sae": 8, "hook_name": "blocks.0.hook_resid_post"})", "'d_in' must be a positive integer"},
      {v6_cfg(8, 16, "batchtopk_x"), "SAE architecture \"batchtopk_x\" is not supported"},
      {R"({"d_in": 8, "d_sae": 8, "metadata": {"sae_lens_version": "6.1.0", "hook_name": "x"}})", "missing 'architecture'"},
      {R"({"d_in": 8, "d_sae": 8, "hook_name": "blocks.0.hook_resid_post", "normalize_activations": "expected_average"})",
       "normalize_activations \"expected_average\" is not supported"},
      {R"({"d_in": 8, "d_sae": 8, "hook_name": "blocks.0.hook_resid_post", "activation_fn_str": "tanh-relu"})",
       "activation \"tanh-relu\" is not supported"},
      {R"({"d_in": 8, "d_sae": 8, "hook_name": "blocks.0.hook_z", "hook_head_index": 3})", "per-head SAEs"},
      {R"({"d_in": 8, "d_sae": 8, "hook_name": "b", "activation_fn_str": "topk"})", "activation_fn_kwargs.k"},
      {R"({"d_in": 8, "d_sae": 8, "hook_name": "b", "architecture": "topk"})", "activation_fn_kwargs.k"},  // fuzz find
      {R"({"d_in": 8, "d_sae": 4, "hook_name": "b", "activation_fn_str": "topk", "activation_fn_kwargs": {"k": 5}})",
       "k = 5 exceeds d_sae = 4"},
      {R"({"d_in": 8, "d_sae": 8})", "no hook name"},
      {R"({"d_in": 8, "d_sae": 8, "hook_name": "b", "architecture": "x\ny"})", "\"x\\ny\" is not supported"},
      {R"({"d_in": 8, "d_sae": 8, "hook_name": "b", "sae_lens_version": 6})", "'sae_lens_version' must be a string"},
  };
  for (const Case& c : cases) {
    const std::string e = error_of([&] { parse_sae_config(c.cfg, "dir/cfg.json"); });
    EXPECT_NE(e.find(c.expected), std::string::npos) << c.cfg << " -> " << e;
    EXPECT_EQ(e.rfind("dir/cfg.json: ", 0), 0u) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
}

// ---- bad SAE files ------------------------------------------------------------------------------

TEST(SaeLoading, BadFilesAreRefusedWithOneLine) {
  TempDir tmp;
  const std::string std_dir = kSaes + "/standard-pre6/blocks.1.hook_resid_pre";
  auto expect_error = [](const std::function<void()>& fn, const std::string& expected) {
    const std::string e = error_of(fn);
    EXPECT_NE(e.find(expected), std::string::npos) << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  };
  expect_error([&] { Sae::load(tmp.file("nothing")); }, "nothing: no such SAE file or folder");
  expect_error([&] { Sae::load(tmp.path()); }, "no cfg.json (SAELens) or params.npz");

  fs::create_directories(tmp.file("noweights"));
  fs::copy_file(std_dir + "/cfg.json", tmp.file("noweights/cfg.json"));
  expect_error([&] { Sae::load(tmp.file("noweights")); }, "noweights/sae_weights.safetensors: missing");

  // cfg.json says d_sae 511, the weights have 512.
  json cfg = json::parse(nt::test::read_text(std_dir + "/cfg.json"));
  cfg["d_sae"] = 511;
  fs::create_directories(tmp.file("shape"));
  write_text(tmp.file("shape/cfg.json"), cfg.dump());
  fs::copy_file(std_dir + "/sae_weights.safetensors", tmp.file("shape/sae_weights.safetensors"));
  expect_error([&] { Sae::load(tmp.file("shape")); },
               "sae_weights.safetensors: tensor 'W_enc' has shape [64, 512], expected [64, 511]");

  // jumprelu without its threshold.
  write_sae(tmp.file("nothr"), v6_cfg(2, 1, "jumprelu"),
            {{"W_enc", {{2, 1}, {1, 1}}}, {"W_dec", {{1, 2}, {1, 1}}}, {"b_dec", {{2}, {0, 0}}}, {"b_enc", {{1}, {0}}}});
  expect_error([&] { Sae::load(tmp.file("nothr")); }, "missing tensor 'threshold'");

  // NaN and infinity in weights.
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    write_sae(tmp.file("nan"), v6_cfg(2, 1, "standard"),
              {{"W_enc", {{2, 1}, {1, 1}}}, {"W_dec", {{1, 2}, {1, bad}}}, {"b_dec", {{2}, {0, 0}}}, {"b_enc", {{1}, {0}}}});
    expect_error([&] { Sae::load(tmp.file("nan")); }, "tensor 'W_dec' has a NaN or infinite value at element 1");
  }

  // Not a zip; a zip whose member is not a valid .npy.
  write_text(tmp.file("bad.npz"), "PK not really");
  expect_error([&] { Sae::load(tmp.file("bad.npz")); }, "bad.npz: cannot read .npz archive");
  {
    int err = 0;
    zip_t* z = zip_open(tmp.file("hdr.npz").c_str(), ZIP_CREATE | ZIP_TRUNCATE, &err);
    static const char bad_npy[] = "\x93NUMPY\x01\x00\x10\x00{'descr': '<f4'\n";
    zip_file_add(z, "W_enc.npy", zip_source_buffer(z, bad_npy, sizeof bad_npy - 1, 0), 0);
    ASSERT_EQ(zip_close(z), 0);
  }
  expect_error([&] { Sae::load(tmp.file("hdr.npz")); }, "hdr.npz member 'W_enc.npy': malformed .npy header");
}

TEST(SaeLoading, NpyHeaderReader) {
  auto npy = [](int major, const std::string& dict, size_t data_bytes) {
    std::string header = dict;
    const size_t prefix = major == 1 ? 10 : 12;
    while ((prefix + header.size() + 1) % 16) header += ' ';
    header += '\n';
    std::string b = std::string("\x93NUMPY", 6) + static_cast<char>(major) + '\0';
    b += static_cast<char>(header.size() & 0xff);
    b += static_cast<char>((header.size() >> 8) & 0xff);
    if (major == 2) b += std::string(2, '\0');
    b += header + std::string(data_bytes, '\0');
    return std::vector<uint8_t>(b.begin(), b.end());
  };
  NpyArray a = parse_npy(npy(2, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", 24), "x.npy");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(a.data.size(), 6u);
  EXPECT_EQ(parse_npy(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }", 20), "x").shape,
            (std::vector<int64_t>{5}));
  EXPECT_EQ(parse_npy(npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", 4), "x").data.size(), 1u);
  const std::vector<std::pair<std::vector<uint8_t>, std::string>> bad = {
      {npy(1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", 24), "dtype '<f8' is not supported"},
      {npy(1, "{'descr': '>f4', 'fortran_order': False, 'shape': (3,), }", 12), "dtype '>f4' is not supported"},
      {npy(1, "{'descr': '<f4', 'fortran_order': True, 'shape': (3,), }", 12), "Fortran order"},
      {npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 8), "data is 8 bytes"},
      {npy(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3), }", 12), "trailing comma"},
      {npy(1, "{'descr': '<f4', 'shape': (3,), }", 12), "needs 'descr', 'fortran_order' and 'shape'"},
      {npy(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 12), "repeated key"},
      {npy(3, "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }", 12), "unsupported .npy version 3.0"},
      {std::vector<uint8_t>{'P', 'K'}, "no \\x93NUMPY magic"},
  };
  for (const auto& [bad_bytes, expected] : bad) {
    const std::vector<uint8_t>& bytes = bad_bytes;  // clang 14 lambdas cannot capture a structured binding
    const std::string e = error_of([&] { parse_npy(bytes, "x.npy"); });
    EXPECT_NE(e.find(expected), std::string::npos) << e;
    EXPECT_EQ(e.rfind("x.npy: ", 0), 0u) << e;
  }
}

// ---- the SAE against a model --------------------------------------------------------------------

TEST(SaeModelCheck, HookAndWidthMustFit) {
  const ModelConfig model = load_model_config(kTiny);
  auto standard = Sae::load(kSaes + "/standard-pre6/blocks.1.hook_resid_pre");
  EXPECT_EQ(standard->hook_point(model), (HookPoint{HookSite::ResidPre, 1}));
  auto topk = Sae::load(kSaes + "/topk-v6/blocks.1.mlp.hook_post");
  EXPECT_EQ(topk->hook_point(model), (HookPoint{HookSite::MlpPost, 1}));

  auto with_hook = [&](const std::string& path, const std::string& hook) {
    SaeLoadOptions o;
    o.hook_name = hook;
    auto sae = Sae::load(path, o);
    return error_of([&] { sae->hook_point(model); });
  };
  std::string e = with_hook(kSaes + "/topk-v6/blocks.1.mlp.hook_post", "blocks.1.hook_resid_post");
  EXPECT_NE(e.find("SAE hook 'blocks.1.hook_resid_post'"), std::string::npos) << e;
  EXPECT_NE(e.find("SAE d_in = 256 but model type 'gpt2' has width 64"), std::string::npos) << e;
  e = with_hook(kSaes + "/standard-pre6/blocks.1.hook_resid_pre", "blocks.1.mlp.hook_pre_linear");
  EXPECT_NE(e.find("SAE hook 'blocks.1.mlp.hook_pre_linear' does not fit model type 'gpt2'"), std::string::npos) << e;
  e = with_hook(kSaes + "/standard-pre6/blocks.1.hook_resid_pre", "blocks.9.hook_resid_pre");
  EXPECT_NE(e.find("out of range"), std::string::npos) << e;
  e = with_hook(kSaes + "/standard-pre6/blocks.1.hook_resid_pre", "blocks.*.hook_resid_pre");
  EXPECT_NE(e.find("needs a layer"), std::string::npos) << e;
  e = with_hook(kSaes + "/standard-pre6/blocks.1.hook_resid_pre", "blocks.0.attn.hook_z");
  EXPECT_NE(e.find("does not fit model type 'gpt2'"), std::string::npos) << e;
}

// The trained SAE shipped beside gpt2-wiki: a 6.x folder with sparsity.safetensors, fitting the model.
TEST(SaeLoading, TrainedGpt2WikiSaeWithSparsity) {
  auto sae = Sae::load(shared_path("models/gpt2-wiki-saes/blocks.2.hook_resid_post"));
  EXPECT_EQ(sae->d_in(), 192);
  EXPECT_EQ(sae->d_sae(), 1536);
  EXPECT_EQ(sae->hook_point(load_model_config(shared_path("models/gpt2-wiki"))), (HookPoint{HookSite::ResidPost, 2}));
  ASSERT_EQ(sae->log10_density().size(), 1536u);
  int never = 0, dense = 0;  // its README: 1 latent never active, 36 active on more than 10 % of tokens
  for (float v : sae->log10_density()) never += v <= -9.99f, dense += v > -1.0f;
  EXPECT_EQ(never, 1);
  EXPECT_EQ(dense, 36);
  const std::string e = error_of([&] { sae->hook_point(load_model_config(kTiny)); });
  EXPECT_NE(e.find("does not fit model type 'gpt2': layer 2 out of range"), std::string::npos) << e;
}

// ---- steering ----------------------------------------------------------------------------------

class SaeSteering : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    session_ = new Session(open_session(kTiny));
    sae_ = new std::shared_ptr<const Sae>(Sae::load(kSaes + "/standard-pre6/blocks.1.hook_resid_pre"));
  }
  static void TearDownTestSuite() {
    delete session_;
    delete sae_;
  }
  static Session* session_;
  static std::shared_ptr<const Sae>* sae_;

  const ModelConfig& config() const { return session_->model->config(); }

  // One prefill of `ids` under `hooks`: the hook's activation after every intervention (an
  // observer added last), and the logits at the last position.
  struct Prefill {
    std::vector<float> resid, last_logits;
  };
  Prefill prefill(const std::vector<int>& ids, Hooks& hooks) {
    Prefill out;
    hooks.add({HookSite::ResidPre, 1}, [&out](const HookContext& ctx, float* acts) {
      out.resid.assign(acts, acts + ctx.rows.size() * ctx.width);
    });
    KVCache cache(config());
    cache.open(0, static_cast<int>(ids.size()));
    StepBatch batch;
    batch.tokens = ids;
    for (int p = 0; p < static_cast<int>(ids.size()); ++p) batch.rows.push_back({0, p, false, ids[p]});
    batch.logit_rows = {static_cast<int>(ids.size()) - 1};
    out.last_logits.resize(static_cast<size_t>(config().vocab_size));
    session_->model->forward(batch, cache, &hooks, out.last_logits.data());
    return out;
  }
  std::vector<int> greedy(const std::vector<int>& ids, const Hooks* hooks, bool recompute) {
    GenerationConfig gen;
    gen.max_new_tokens = 20;
    gen.stop_at_eos = false;
    gen.recompute = recompute;
    Generator g(*session_->model, hooks);
    return g.generate({ids}, gen)[0].generated_ids;
  }
  void check_golden(const std::string& name, const std::function<void(Hooks&)>& add) {
    SafetensorsFile g(kSaes + "/goldens/steer_" + name + ".safetensors");
    const std::vector<int64_t> ids64 = g.read_i64(g.get("input_ids"));
    const std::vector<int> ids(ids64.begin(), ids64.end());
    Hooks hooks(config());
    add(hooks);
    const Prefill p = prefill(ids, hooks);
    expect_near_all(p.resid, g.read_f32(g.get("resid_steered")), kTol, name + " resid_steered");
    expect_near_all(p.last_logits, g.read_f32(g.get("last_logits")), kTol, name + " last_logits");
    Hooks gen_hooks(config());
    add(gen_hooks);
    const std::vector<int64_t> want64 = g.read_i64(g.get("greedy_ids"));
    const std::vector<int> want(want64.begin(), want64.end());
    EXPECT_EQ(greedy(ids, &gen_hooks, false), want) << name << " KV-cached";
    EXPECT_EQ(greedy(ids, &gen_hooks, true), want) << name << " recomputed";
  }
};
Session* SaeSteering::session_ = nullptr;
std::shared_ptr<const Sae>* SaeSteering::sae_ = nullptr;

TEST_F(SaeSteering, ClampKeepsTheErrorTermAndMatchesTheGolden) {
  const json spec = sae_goldens()["steering"]["clamp"];
  SaeLatentEdit edit;
  edit.latents = {spec["latent"].get<int>()};
  edit.mode = InterventionMode::Set;
  edit.value = spec["value"].get<float>();
  check_golden("clamp", [&](Hooks& h) { add_sae_latent_edit(h, config(), *sae_, edit); });

  // The unsteered latent on the prompt, as the golden lists it.
  SafetensorsFile g(kSaes + "/goldens/steer_clamp.safetensors");
  const std::vector<int64_t> ids64 = g.read_i64(g.get("input_ids"));
  Hooks none(config());
  const Prefill p = prefill({ids64.begin(), ids64.end()}, none);
  SaeEncoding enc;
  (*sae_)->encode(p.resid.data(), static_cast<int>(ids64.size()), enc);
  const std::vector<float> want = g.read_f32(g.get("latent_acts_unsteered"));
  for (size_t r = 0; r < want.size(); ++r)
    EXPECT_NEAR(enc.acts[r * (*sae_)->d_sae() + edit.latents[0]], want[r], kTol) << "token " << r;
}

TEST_F(SaeSteering, DirectionAddMatchesTheGolden) {
  const json spec = sae_goldens()["steering"]["add"];
  SaeDirectionAdd add;
  add.latents = {spec["latent"].get<int>()};
  add.strength = spec["strength"].get<float>();
  check_golden("add", [&](Hooks& h) { add_sae_direction_add(h, config(), *sae_, add); });
}

TEST_F(SaeSteering, NeutralEditsLeaveTheActivationExactlyAsItWas) {
  const std::vector<int> ids = session_->encode_prompt("The quick brown fox jumps over the lazy dog", 0);
  Hooks none(config());
  const Prefill base = prefill(ids, none);
  for (const char* mode : {"scale:1", "add:0"}) {
    Intervention parsed;
    parse_mode(mode, parsed);
    SaeLatentEdit edit;
    edit.latents = {0, 5, 100, 476, 511};
    edit.mode = parsed.mode;
    edit.value = parsed.value;
    Hooks hooks(config());
    add_sae_latent_edit(hooks, config(), *sae_, edit);
    const Prefill p = prefill(ids, hooks);
    EXPECT_EQ(p.resid, base.resid) << mode;
    EXPECT_EQ(p.last_logits, base.last_logits) << mode;
  }
}

TEST_F(SaeSteering, ModesAgreeWithEachOther) {
  const std::vector<int> ids = session_->encode_prompt("Hello, my name is", 0);
  auto run = [&](InterventionMode mode, float value, std::vector<float> means = {}) {
    SaeLatentEdit edit;
    edit.latents = {476, 300};
    edit.mode = mode;
    edit.value = value;
    edit.means = std::move(means);
    Hooks hooks(config());
    add_sae_latent_edit(hooks, config(), *sae_, edit);
    return prefill(ids, hooks).resid;
  };
  EXPECT_EQ(run(InterventionMode::Zero, 0), run(InterventionMode::Scale, 0));
  EXPECT_EQ(run(InterventionMode::Zero, 0), run(InterventionMode::Set, 0));
  EXPECT_EQ(run(InterventionMode::Mean, 0, {0.7f, 0.7f}), run(InterventionMode::Set, 0.7f));
  // An edit for another sequence leaves this one as it was.
  Hooks none(config());
  const Prefill base = prefill(ids, none);
  SaeLatentEdit edit;
  edit.latents = {476};
  edit.mode = InterventionMode::Set;
  edit.value = 5;
  edit.only_seqs = {1};  // not this sequence (0)
  Hooks hooks(config());
  add_sae_latent_edit(hooks, config(), *sae_, edit);
  EXPECT_EQ(prefill(ids, hooks).resid, base.resid);
}

TEST_F(SaeSteering, BadEditsAreRefused) {
  Hooks hooks(config());
  SaeLatentEdit edit;
  edit.latents = {512};
  std::string e = error_of([&] { add_sae_latent_edit(hooks, config(), *sae_, edit); });
  EXPECT_NE(e.find("latent 512 out of range (the SAE has 512 latents)"), std::string::npos) << e;
  edit.latents = {1, 2};
  edit.mode = InterventionMode::Mean;
  edit.means = {0.5f};
  e = error_of([&] { add_sae_latent_edit(hooks, config(), *sae_, edit); });
  EXPECT_NE(e.find("mode mean needs one mean per latent"), std::string::npos) << e;
  auto topk = Sae::load(kSaes + "/topk-v6/blocks.1.mlp.hook_post");
  SaeDirectionAdd add;
  add.latents = {};
  e = error_of([&] { add_sae_direction_add(hooks, config(), topk, add); });
  EXPECT_NE(e.find("no SAE latents to steer"), std::string::npos) << e;
}

}  // namespace
