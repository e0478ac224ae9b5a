// nt_atlas_bench: atlas scan throughput against plain prefill of the same windows, and the scan's
// peak RSS, on the GPT-2-small-shaped random model nt_bench uses (written when missing).
//
//   nt_atlas_bench [--threads 2] [--max-tokens 10000] [--corpus FILE]
//
// Both runs read the same corpus (default: ../shared/corpora/wiki-heldout.jsonl from the repository
// root) through the same
// windows (context 128): "prefill" runs the windows through Model::forward with no hook (8 windows
// per step, no logits, as the scan does); "atlas" is scan_corpus with mlp.hook_post and
// hook_resid_post, every statistic, top-20 and 20 samples per unit. Peak RSS is the process's
// VmHWM after the scan (the scan runs in a fresh child so the figure is its own). Prints one
// Markdown row.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>

#include "atlas/atlas_scan.h"
#include "atlas/document_windows.h"
#include "io/model_identity.h"
#include "io/random_model.h"
#include "util/thread_pool.h"

namespace {

using Clock = std::chrono::steady_clock;

long peak_rss_kib() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  char line[256];
  long kib = -1;
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
  std::fclose(f);
  return kib;
}

// The scan's windows run through the model with no hook, 8 per step.
double plain_prefill_seconds(const nt::Session& s, const std::string& corpus, int64_t max_tokens) {
  nt::CorpusReader reader({{corpus}});
  std::vector<std::vector<int>> windows;
  int64_t budget = max_tokens;
  while (budget > 0) {
    auto doc = reader.next();
    if (!doc) break;
    auto ids = s.tokenizer->encode(doc->text);
    if (static_cast<int64_t>(ids.size()) > budget) ids.resize(static_cast<size_t>(budget));
    budget -= static_cast<int64_t>(ids.size());
    for (const auto& w : nt::document_windows(static_cast<int>(ids.size()), 128))
      windows.emplace_back(ids.begin() + w.start, ids.begin() + w.end);
  }
  const auto t0 = Clock::now();
  for (size_t i = 0; i < windows.size(); i += 8) {
    nt::KVCache cache(s.model->config());
    nt::StepBatch batch;
    for (size_t w = i; w < std::min(windows.size(), i + 8); ++w) {
      cache.open(static_cast<int>(w - i), static_cast<int>(windows[w].size()));
      for (size_t p = 0; p < windows[w].size(); ++p) {
        batch.tokens.push_back(windows[w][p]);
        batch.rows.push_back({static_cast<int>(w - i), static_cast<int>(p), false, windows[w][p]});
      }
    }
    s.model->forward(batch, cache, nullptr, nullptr);
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int threads = 2;
  int64_t max_tokens = 10000;
  std::string corpus = "../shared/corpora/wiki-heldout.jsonl";  // from the repository root
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string f = argv[i], v = argv[i + 1];
    if (f == "--threads") threads = std::stoi(v);
    else if (f == "--max-tokens") max_tokens = std::stoll(v);
    else if (f == "--corpus") corpus = v;
  }
  nt::set_thread_count(threads);
  const std::string dir =
      std::filesystem::read_symlink("/proc/self/exe").parent_path().string() + "/bench-model/gpt2-small";
  const nt::RandomModelSpec spec;
  if (!nt::random_model_is_current(dir, spec)) {
    std::fprintf(stderr, "nt_atlas_bench: writing a random GPT-2-small-shaped model to %s ...\n", dir.c_str());
    nt::write_random_model(dir, spec, nt::default_random_model_tokenizer_dir(spec.arch));
  }
  const pid_t child = ::fork();
  if (child == 0) {  // the scan, alone in its process, for its own peak RSS
    nt::Session s = nt::open_session(dir);
    nt::AtlasSettings settings;
    settings.sites = {nt::HookSite::MlpPost, nt::HookSite::ResidPost};
    settings.max_tokens = max_tokens;
    nt::AtlasState state(settings, nt::atlas_layout(settings, s.model->config()));
    nt::CorpusReader reader({{corpus}});
    const auto t0 = Clock::now();
    nt::scan_corpus(s, reader, state, {}, 0, max_tokens);
    const double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::printf("| atlas (mlp.hook_post + hook_resid_post, %zu units, top-20, 20 samples) | %ld | %.1f | %.0f | %ld MiB |\n",
                state.layout.total, static_cast<long>(state.tokens), secs, static_cast<double>(state.tokens) / secs,
                peak_rss_kib() / 1024);
    std::fflush(stdout);
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  nt::Session s = nt::open_session(dir);
  const double secs = plain_prefill_seconds(s, corpus, max_tokens);
  std::printf("| plain prefill of the same windows | %ld | %.1f | %.0f | %ld MiB |\n", static_cast<long>(max_tokens), secs,
              static_cast<double>(max_tokens) / secs, peak_rss_kib() / 1024);
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
}
