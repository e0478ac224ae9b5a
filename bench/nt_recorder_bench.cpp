// nt_recorder_bench: the recorder alone, as nt_bench's tracing row drives it (both sites, every
// unit, batch 16, generated positions), on random activations: CPU and wall time per step, with
// the caches flushed between steps as a step's weight stream flushes them.
//
//   nt_recorder_bench [gpt2|llama] [threads]
//
// gpt2: GPT-2 small's widths (12 layers x (768 + 3072) units); llama: TinyLlama-1.1B's
// (22 layers x (2048 + 5632) units). The recorder's cost grows with units x sequences, not with
// the weights, so no model is loaded.
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "hooks/hooks.h"
#include "io/model_config.h"
#include "io/random_model.h"
#include "tokenizer/tokenizer.h"
#include "trace/recorder.h"
#include "util/thread_pool.h"

namespace {

double clock_s(clockid_t id) {
  timespec t{};
  clock_gettime(id, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

nt::ModelConfig shape(bool llama) {
  nt::ModelConfig c;
  c.arch = llama ? nt::Arch::Llama : nt::Arch::Gpt2;
  c.model_type = llama ? "llama" : "gpt2";
  c.n_layer = llama ? 22 : 12;
  c.d_model = llama ? 2048 : 768;
  c.d_mlp = llama ? 5632 : 3072;
  c.n_head = llama ? 32 : 12;
  c.n_kv_head = llama ? 4 : 12;
  c.head_dim = 64;
  c.vocab_size = 32000;
  c.n_ctx = 2048;
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  const bool llama = argc > 1 && std::string(argv[1]) == "llama";
  nt::set_thread_count(argc > 2 ? std::atoi(argv[2]) : 2);
  const nt::ModelConfig c = shape(llama);
  auto tokenizer = nt::load_tokenizer(nt::default_random_model_tokenizer_dir("gpt2"));
  nt::RecorderOptions options;
  options.sites = {nt::HookSite::ResidPost, nt::HookSite::MlpPost};
  options.settings = {nt::Positions::Generated};
  constexpr int kBatch = 16, kSteps = 40;
  nt::Recorder recorder(c, *tokenizer, options, std::vector<int>(kBatch, 0), 1);
  nt::Hooks hooks(c);
  recorder.attach(hooks);
  std::vector<float> acts(static_cast<size_t>(kBatch) * c.d_mlp), flush(size_t{64} << 20);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (auto& v : acts) v = nd(rng);
  std::vector<nt::RowInfo> rows(kBatch);
  double cpu = 0, wall = 0;
  volatile float sink = 0;
  for (int step = 0; step < kSteps; ++step) {
    for (int r = 0; r < kBatch; ++r) rows[static_cast<size_t>(r)] = {r, 10 + step, true, 5};
    for (size_t i = 0; i < flush.size(); i += 16) sink = sink + flush[i];
    const double c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID), w0 = clock_s(CLOCK_MONOTONIC);
    hooks.run({nt::HookSite::Embed, -1}, rows, acts.data(), c.d_model);
    for (int l = 0; l < c.n_layer; ++l) {
      hooks.run({nt::HookSite::MlpPost, l}, rows, acts.data(), c.d_mlp);
      hooks.run({nt::HookSite::ResidPost, l}, rows, acts.data(), c.d_model);
    }
    cpu += clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0;
    wall += clock_s(CLOCK_MONOTONIC) - w0;
  }
  std::printf("%s shape, batch %d, %d units per token: recorder %.2f ms CPU, %.2f ms wall per step\n",
              llama ? "TinyLlama" : "GPT-2 small", kBatch, c.n_layer * (c.d_model + c.d_mlp), cpu / kSteps * 1e3,
              wall / kSteps * 1e3);
  return 0;
}
