// nt_bench: throughput of the engine on a GPT-2-sized model, next to what the machine can do.
//
//   nt_bench [--shape gpt2|llama | --model DIR | --arch pythia-160m|gemma2-2b] [--threads 2]
//            [--json FILE] [--quick] [--no-formats] [--tracing-only] [--sae]
//            [--atlas-only [--corpus FILE] [--max-tokens N]]
//
// The model defaults to <folder of this binary>/bench-model/gpt2-small (GPT-2 small's shape), or
// with --shape llama to bench-model/tinyllama (TinyLlama-1.1B's shape, bf16 in the file, float32
// once loaded), written with random weights (src/io/random_model.h, the same code as
// tools/make_random_model) when missing; --arch uses bench-model/<NAME>, a GPT-NeoX or Gemma-2
// shape written likewise (src/io/random_family_model.h). --tracing-only runs only the batch-16
// row, untraced and traced. --sae adds the SAE tracing rows (below); off by default, as the SAEs'
// weights (~300 MB) would count in every other row's peak RSS. --atlas-only runs only the atlas
// rows (below): minutes, not seconds.
//
// Measures, in this order:
//   prefill    one Model::forward step over a 128-token prompt (logits for the last row only, as
//              generation asks for), best of several; GFLOP/s counts every matrix product
//              (2 * matmul parameters * tokens, lm_head once) plus attention (4 * d_model per
//              (query, key) pair per layer).
//   decode     nt::Generator, greedy, stop_at_eos off, at batch 1, 4, 16, 45 (see run_decode).
//              Prefill, decode and tracing rows run in rounds; each row keeps its best round.
//   tracing    generation with the recorder on every neuron of hook_resid_post and mlp.hook_post,
//              at batch 16 and 64 new tokens (the seed study's length), next to the same run
//              untraced.
//   SAE        with --sae: the same batch-16 generation with the recorder on one random SAE's
//              24,576 latents, f32 and bf16 encoder, against the untraced row.
//   atlas      with --atlas-only, only these: the atlas scan's corpus tokens/s against plain
//              prefill of the same windows, and the scan's peak RSS (see ATLAS ROWS).
//   memory     each float32 row's own peak RSS (VmHWM, reset before the row) against the weights
//              plus the KV cache it reserves; the whole process's peak; weight bytes.
//   formats    batch-1 decode with the model loaded as bf16 and as int8 (--weights), against the
//              float32 batch-1 row (skipped with --no-formats).
//   machine    STREAM-style read (sum) and copy bandwidth, and the OpenBLAS SGEMM rate for the
//              prefill shape 128x768 @ 768x3072 (run last, so their 1 GiB buffer is not in the RSS;
//              the SGEMM row and its goal are left out when built without OpenBLAS).
// Prints Markdown tables and the goal ratios; --json writes the same numbers.
#if defined(NT_HAVE_OPENBLAS)
#include <cblas.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "atlas/atlas_scan.h"
#include "atlas/document_windows.h"
#include "hooks/hooks.h"
#include "sae/sae.h"
#include "tokenizer/tokenizer.h"
#include "trace/recorder.h"
#include "io/random_family_model.h"
#include "io/random_model.h"
#include "model/kv_cache.h"
#include "model/model.h"
#include "model/weight_matrix.h"
#include "runtime/generator.h"
#include "runtime/session.h"
#include "util/atomic_file.h"
#include "util/error.h"
#include "util/malloc_tuning.h"
#include "util/thread_pool.h"

namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

struct Options {
  std::string model_dir;
  bool default_model = true;
  int threads = 2;
  std::string json_path;
  bool quick = false;
  bool formats = true;
  bool tracing_only = false;
  bool sae = false;
  bool atlas_only = false;
  std::string corpus = "../shared/corpora/wiki-heldout.jsonl";  // the atlas rows' (from the repository root)
  int64_t max_tokens = 10000;                                    // the atlas rows' corpus tokens
  nt::RandomModelSpec spec;  // the default model's shape
  std::string arch;  // --arch: a random GPT-NeoX / Gemma-2 shape (random_family_model.h)
};

// ---------------------------------------------------------------------------------------------
// Machine: memory bandwidth and SGEMM rate.

// Sum with 64 independent accumulators (so the compiler vectorises it and the adds do not form one
// long dependency chain) and software prefetch 4 KiB ahead: without the prefetch one core keeps
// too few cache misses in flight and the figure comes out ~30% below what OpenBLAS's sgemv reads.
float sum_floats(const float* p, size_t n) {
  constexpr size_t kStep = 64, kAhead = 1024;
  float acc[kStep] = {};
  size_t i = 0;
  for (; i + kStep <= n; i += kStep) {
    for (size_t c = 0; c < kStep; c += 16) __builtin_prefetch(p + i + kAhead + c);
    for (size_t j = 0; j < kStep; ++j) acc[j] += p[i + j];
  }
  for (; i < n; ++i) acc[0] += p[i];
  float s = 0.0f;
  for (float a : acc) s += a;
  return s;
}

// Runs fn(thread, begin, end) on `threads` threads over [0, n), split in contiguous parts.
template <class Fn>
void parallel_ranges(size_t n, int threads, Fn fn) {
  std::vector<std::thread> pool;
  const size_t part = (n + static_cast<size_t>(threads) - 1) / static_cast<size_t>(threads);
  for (int t = 1; t < threads; ++t) {
    const size_t b = std::min(n, part * static_cast<size_t>(t)), e = std::min(n, b + part);
    pool.emplace_back([=, &fn] { fn(t, b, e); });
  }
  fn(0, 0, std::min(n, part));
  for (auto& th : pool) th.join();
}

struct Bandwidth {
  double read_gbs = 0, copy_gbs = 0;
  size_t bytes = 0;
};

// STREAM-style: read = sum over the whole array; copy = first half to second half, counted as
// 2 x half bytes (read + write, no write-allocate traffic), as STREAM counts it. Best of `reps`.
Bandwidth measure_bandwidth(size_t bytes, int threads, int reps) {
  const size_t n = bytes / sizeof(float);
  std::unique_ptr<float[]> a(new float[n]);
  parallel_ranges(n, threads, [&](int, size_t b, size_t e) {  // first touch by the thread that reads it
    for (size_t i = b; i < e; ++i) a[i] = static_cast<float>(i & 1023) * 1e-3f;
  });
  Bandwidth bw;
  bw.bytes = n * sizeof(float);
  std::vector<float> partial(static_cast<size_t>(threads));
  double best = 1e30;
  volatile float sink = 0.0f;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    parallel_ranges(n, threads, [&](int t, size_t b, size_t e) {
      partial[static_cast<size_t>(t)] = sum_floats(a.get() + b, e - b);
    });
    best = std::min(best, seconds_since(t0));
    for (float p : partial) sink = sink + p;
  }
  bw.read_gbs = static_cast<double>(bw.bytes) / best / 1e9;
  const size_t half = n / 2;
  best = 1e30;
  for (int r = 0; r < reps; ++r) {
    const auto t0 = Clock::now();
    parallel_ranges(half, threads, [&](int, size_t b, size_t e) {
      std::memcpy(a.get() + half + b, a.get() + b, (e - b) * sizeof(float));
    });
    best = std::min(best, seconds_since(t0));
  }
  bw.copy_gbs = 2.0 * static_cast<double>(half * sizeof(float)) / best / 1e9;
  return bw;
}

// GFLOP/s of OpenBLAS's C[m,n] = A[m,k] @ B[k,n], best of `reps`; 0 when built without OpenBLAS.
double measure_sgemm([[maybe_unused]] int m, [[maybe_unused]] int k, [[maybe_unused]] int n,
                     [[maybe_unused]] int reps) {
#if !defined(NT_HAVE_OPENBLAS)
  return 0.0;
#else
  std::vector<float> A(static_cast<size_t>(m) * k), B(static_cast<size_t>(k) * n),
      C(static_cast<size_t>(m) * n);
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 0.02f);
  for (auto& x : A) x = nd(rng);
  for (auto& x : B) x = nd(rng);
  double best = 1e30;
  for (int r = 0; r < reps + 1; ++r) {  // the first run warms up the BLAS threads
    const auto t0 = Clock::now();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, m, n, k, 1.0f, A.data(), k, B.data(), n, 0.0f,
                C.data(), n);
    if (r > 0) best = std::min(best, seconds_since(t0));
  }
  return 2.0 * m * n * k / best / 1e9;
#endif
}

// ---------------------------------------------------------------------------------------------
// Model.

std::vector<int> random_tokens(int n, int vocab, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int> d(0, std::min(vocab, 50000) - 1);
  std::vector<int> ids(static_cast<size_t>(n));
  for (auto& id : ids) id = d(rng);
  return ids;
}

// Multiply-adds of one row through the stack (matrix products only, lm_head excluded), x2 = FLOPs.
double matmul_flops_per_row(const nt::ModelConfig& c) {
  const double C = c.d_model, M = c.d_mlp;
  const double kv = static_cast<double>(c.n_kv_head) * c.head_dim;
  const double per_layer = C * (C + 2 * kv) + C * C + C * M + M * C;
  return 2.0 * c.n_layer * per_layer;
}

struct PrefillResult {
  int tokens = 0;
  double seconds = 0, tokens_per_s = 0, gflop = 0, gflops = 0;
};

// One forward step over a `tokens`-row prompt, as Generator's first step would run it alone.
PrefillResult bench_prefill(nt::Model& model, int tokens, int reps) {
  const nt::ModelConfig& c = model.config();
  nt::KVCache cache(c);
  cache.open(0, tokens);
  nt::StepBatch batch;
  batch.tokens = random_tokens(tokens, c.vocab_size, 7);
  for (int p = 0; p < tokens; ++p) batch.rows.push_back({0, p, false});
  batch.logit_rows = {tokens - 1};
  std::vector<float> logits(static_cast<size_t>(c.vocab_size));
  double best = 1e30;
  for (int r = 0; r < reps + 1; ++r) {  // the first run faults the weights in
    const auto t0 = Clock::now();
    model.forward(batch, cache, nullptr, logits.data());
    if (r > 0) best = std::min(best, seconds_since(t0));
  }
  PrefillResult res;
  res.tokens = tokens;
  res.seconds = best;
  res.tokens_per_s = tokens / best;
  const double attn_pairs = 0.5 * tokens * (tokens + 1.0);
  const double flops = matmul_flops_per_row(c) * tokens + 2.0 * c.d_model * c.vocab_size +
                       4.0 * c.n_layer * static_cast<double>(c.n_head) * c.head_dim * attn_pairs;
  res.gflop = flops / 1e9;
  res.gflops = res.gflop / best;
  return res;
}

struct DecodeResult {
  int batch = 0;
  int new_tokens = 0;
  long decode_tokens = 0;  // tokens generated by decode steps (all but the prefill step's)
  int decode_steps = 0;
  double prefill_s = 0;  // the first step: every prompt, plus sampling the first token
  double decode_s = 0;
  double per_seq_tok_s = 0;
  double aggregate_tok_s = 0;
  size_t kv_bytes = 0;  // KV cache reserved while all `batch` sequences run
  long peak_rss = -1;   // the process's RSS high-water mark during this row (max over rounds), -1: unknown
  double hook_share = 0;  // tracing row: share of the run's wall time spent in the recorder's hooks
};

// Peak RSS per row. Linux resets the process's RSS high-water mark (VmHWM) to the current RSS when
// "5" is written to /proc/self/clear_refs, so each row reports its own peak, not one left behind
// by loading the model or by an earlier row. Where that is unavailable the row reports none.
// (getrusage's ru_maxrss is reset with it, so the process's own peak is kept here.)
long peak_rss_since_reset();
long g_process_peak_rss = -1;

bool reset_peak_rss() {
  g_process_peak_rss = std::max(g_process_peak_rss, peak_rss_since_reset());
#if defined(__GLIBC__)
  malloc_trim(0);  // what earlier rows freed goes back to the system, not into this row's figure
#endif
  FILE* f = std::fopen("/proc/self/clear_refs", "w");
  if (!f) return false;
  const bool ok = std::fputs("5", f) >= 0;
  return std::fclose(f) == 0 && ok;
}

// VmHWM from /proc/self/status in bytes, -1 where unavailable.
long peak_rss_since_reset() {
  FILE* f = std::fopen("/proc/self/status", "r");
  if (!f) return -1;
  long kib = -1;
  char line[256];
  while (std::fgets(line, sizeof line, f))
    if (std::sscanf(line, "VmHWM: %ld kB", &kib) == 1) break;
  std::fclose(f);
  return kib < 0 ? -1 : kib * 1024L;
}

// Prompts of 8..16 tokens (a few different lengths), fixed by the seed.
std::vector<std::vector<int>> make_prompts(int batch, int vocab) {
  std::vector<std::vector<int>> prompts;
  for (int i = 0; i < batch; ++i)
    prompts.push_back(random_tokens(8 + (i * 5) % 9, vocab, 100 + static_cast<uint64_t>(i)));
  return prompts;
}

// Greedy generation of `new_tokens` tokens for `batch` prompts at once (max_batch = batch, so all
// prompts are prefilled together in the first step and every later step decodes exactly `batch`
// rows; stop_at_eos is off, so no sequence leaves early).
//
// How decode is separated from prefill: the progress callback runs after every step and carries
// the running count of generated tokens. We take a timestamp and that count after the first step
// (prefill of all prompts + their first token) and after the last step; decode rate =
// (tokens_last - tokens_first) / (t_last - t_first). This times exactly the decode steps
// (forward + sampling + Generator bookkeeping) in one run, with no subtraction of two noisy runs.
// With feed_last_token (tracing), the last step only feeds tokens and generates none; it is
// included in the time, as tracing pays for it.
DecodeResult run_decode(nt::Model& model, const nt::Hooks* hooks, int batch, int new_tokens,
                        bool feed_last_token = false) {
  const nt::ModelConfig& c = model.config();
  const auto prompts = make_prompts(batch, c.vocab_size);
  nt::GenerationConfig gc;
  gc.max_new_tokens = new_tokens;
  gc.sampling.temperature = 0.0f;
  gc.stop_at_eos = false;
  gc.feed_last_token = feed_last_token;
  gc.max_batch = batch;
  gc.max_step_rows = 1 << 20;  // every prompt prefilled in the first step, so later steps are pure decode
  const bool peak_reset = reset_peak_rss();
  nt::Generator gen(model, hooks);
  int steps = 0;
  long tok_first = 0, tok_last = 0;
  Clock::time_point t_first, t_last;
  gen.on_progress([&](const nt::GenerationProgress& p) {
    const auto now = Clock::now();
    if (++steps == 1) {
      t_first = now;
      tok_first = p.tokens_generated;
    }
    t_last = now;
    tok_last = p.tokens_generated;
  });
  const auto t0 = Clock::now();
  gen.generate(prompts, gc);
  DecodeResult r;
  r.peak_rss = peak_reset ? peak_rss_since_reset() : -1;
  r.batch = batch;
  r.new_tokens = new_tokens;
  r.decode_steps = steps - 1;
  r.decode_tokens = tok_last - tok_first;
  r.prefill_s = std::chrono::duration<double>(t_first - t0).count();
  r.decode_s = std::chrono::duration<double>(t_last - t_first).count();
  if (r.decode_s > 0) {
    r.aggregate_tok_s = static_cast<double>(r.decode_tokens) / r.decode_s;
    r.per_seq_tok_s = r.aggregate_tok_s / batch;
  }
  // KVCache::open reserves n_layer x n_kv_head x capacity x head_dim floats for K and for V.
  for (const auto& p : prompts) {
    const size_t cap = static_cast<size_t>(std::min(c.n_ctx, static_cast<int>(p.size()) + new_tokens));
    r.kv_bytes += 2 * sizeof(float) * static_cast<size_t>(c.n_layer) * c.n_kv_head * cap * c.head_dim;
  }
  return r;
}

// Keeps the faster of two runs of the same row (best-of: on a shared machine interference only
// ever makes a run slower).
void keep_best(DecodeResult& best, const DecodeResult& d) {
  const long peak = std::max(best.peak_rss, d.peak_rss);
  if (best.batch == 0 || d.aggregate_tok_s > best.aggregate_tok_s) best = d;
  best.peak_rss = peak;
}

// ---------------------------------------------------------------------------------------------
// Wall time spent inside the recorder's hook callbacks: a hook added before the recorder's on each
// point it observes starts a clock, one added after stops it. Measured in the same run as the
// traced row's time, so on a shared machine a burst of other work inflates both alike, unlike the
// comparison of the traced run with the untraced one (two runs, each meeting its own load).
struct HookTimer {
  double seconds = 0;
  Clock::time_point t0;
  void attach_start(nt::Hooks& hooks, const std::vector<nt::HookPoint>& points) {
    for (const auto& p : points) hooks.add(p, [this](const nt::HookContext&, float*) { t0 = Clock::now(); });
  }
  void attach_stop(nt::Hooks& hooks, const std::vector<nt::HookPoint>& points) {
    for (const auto& p : points) hooks.add(p, [this](const nt::HookContext&, float*) { seconds += seconds_since(t0); });
  }
};

// TRACING ROW: generation with the real recorder attached, recording what
// `neurontrace trace --site hook_resid_post --site mlp.hook_post` records — every neuron of both
// sites at every generated token (feed_last_token on, as tracing does).
DecodeResult bench_tracing(nt::Model& model, nt::Hooks* hooks, HookTimer& timer, int batch, int new_tokens) {
  timer.seconds = 0;
  const auto t0 = Clock::now();
  DecodeResult r = run_decode(model, hooks, batch, new_tokens, /*feed_last_token=*/true);
  r.hook_share = timer.seconds / seconds_since(t0);
  return r;
}
// END TRACING ROW

// SAE TRACING ROWS: the same generation with the recorder on one SAE's latents (what `neurontrace
// trace --sae DIR` records) at every generated token: a random TopK SAE (k = 32, like OpenAI's
// GPT-2 SAEs) of 24,576 latents on the middle layer's hook_resid_post, built in memory, with an
// f32 or a bf16 encoder.
std::shared_ptr<const nt::Sae> random_sae(const nt::ModelConfig& c, nt::WeightFormat encoder) {
  nt::SaeConfig cfg;
  cfg.d_in = c.d_model;
  cfg.d_sae = 24576;
  cfg.architecture = nt::SaeArchitecture::TopK;
  cfg.k = 32;
  cfg.hook_name = "blocks." + std::to_string(c.n_layer / 2) + ".hook_resid_post";
  nt::Sae::Weights w;
  std::mt19937 rng(0);
  std::normal_distribution<float> normal(0.0f, 1.0f / std::sqrt(static_cast<float>(c.d_model)));
  const size_t n = static_cast<size_t>(cfg.d_in) * cfg.d_sae;
  w.W_enc.resize(n);
  w.W_dec.resize(n);
  for (float& v : w.W_enc) v = normal(rng);
  for (float& v : w.W_dec) v = normal(rng);
  w.b_enc.assign(static_cast<size_t>(cfg.d_sae), 0.0f);
  w.b_dec.assign(static_cast<size_t>(cfg.d_in), 0.0f);
  nt::SaeLoadOptions options;
  options.encoder_format = encoder;
  return std::make_shared<const nt::Sae>(cfg, "random TopK SAE", std::move(w), options);
}
// END SAE TRACING ROWS
// ---------------------------------------------------------------------------------------------

// 1-minute load average; other work on the machine makes every figure here lower.
double load_average() {
  double l = -1.0;
  if (FILE* f = std::fopen("/proc/loadavg", "r")) {
    if (std::fscanf(f, "%lf", &l) != 1) l = -1.0;
    std::fclose(f);
  }
  return l;
}

// CPU seconds (user + system) this process has used so far.
double cpu_seconds() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
         1e-6 * static_cast<double>(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

std::string fmt_percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", v * 100);
  return buf;
}

// ATLAS ROWS (--atlas-only): `neurontrace atlas` on mlp.hook_post + hook_resid_post (every unit,
// every statistic, top-20 contexts and 20 samples, context 128, 8 windows per step) over the
// first --max-tokens tokens of --corpus, against plain prefill of the same windows (the same
// forward steps with no hook and no logits). The two alternate, round by round, so a burst of
// other work on the machine falls on both. Each run is a child process forked for it that loads
// the model itself (untimed; a fork does not copy the parent's pool threads, so the parent never
// starts them): its peak RSS (VmHWM) is its own, model included. The scan's time includes
// reading and tokenizing the corpus; the prefill's windows are cut before its clock starts.
struct ChildRun {
  int64_t tokens = 0;
  size_t units = 0, windows = 0;
  double seconds = 0, cpu_seconds = 0;  // wall and CPU (user + system, every thread) time
  long peak_rss = -1;
};

ChildRun run_in_child(const std::string& model_dir, const std::function<ChildRun(nt::Session&)>& run) {
  int fds[2];
  if (pipe(fds) != 0) throw nt::Error("pipe failed: " + std::string(std::strerror(errno)));
  const pid_t pid = fork();
  if (pid < 0) throw nt::Error("fork failed: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    close(fds[0]);
    ChildRun result;
    try {
      reset_peak_rss();  // a forked child starts with its parent's high-water mark
      nt::Session session = nt::open_session(model_dir, nt::WeightFormat::F32);
      result = run(session);
      result.peak_rss = peak_rss_since_reset();
    } catch (const std::exception& e) {
      std::fprintf(stderr, "nt_bench: error: %s\n", e.what());
      _exit(1);
    }
    const bool ok = write(fds[1], &result, sizeof result) == static_cast<ssize_t>(sizeof result);
    _exit(ok ? 0 : 1);
  }
  close(fds[1]);
  ChildRun result;
  const bool got = read(fds[0], &result, sizeof result) == static_cast<ssize_t>(sizeof result);
  close(fds[0]);
  int status = 0;
  if (waitpid(pid, &status, 0) < 0 || !got || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw nt::Error("an atlas row's child process failed");
  return result;
}

ChildRun atlas_scan(nt::Session& session, const std::string& corpus, int64_t max_tokens) {
  nt::AtlasSettings settings;
  settings.sites = {nt::HookSite::MlpPost, nt::HookSite::ResidPost};
  settings.max_tokens = max_tokens;
  nt::AtlasState state(settings, nt::atlas_layout(settings, session.model->config()));
  nt::CorpusReader reader({{corpus}});
  const auto t0 = Clock::now();
  const double cpu0 = cpu_seconds();
  nt::scan_corpus(session, reader, state, {}, 0, max_tokens);
  ChildRun r;
  r.seconds = seconds_since(t0);
  r.cpu_seconds = cpu_seconds() - cpu0;
  r.tokens = state.tokens;
  r.units = state.layout.total;
  return r;
}

// The windows the scan cuts from the first `max_tokens` tokens of the corpus (BOS included).
std::vector<std::vector<int>> atlas_windows(const nt::Session& session, const std::string& corpus, int64_t max_tokens) {
  const bool bos = session.tokenizer->add_bos();
  const int capacity = nt::AtlasSettings{}.context - (bos ? 1 : 0);
  nt::CorpusReader reader({{corpus}});
  std::vector<std::vector<int>> windows;
  for (int64_t budget = max_tokens; budget > 0;) {
    auto doc = reader.next();
    if (!doc) break;
    std::vector<int> ids = session.tokenizer->encode(doc->text);
    if (static_cast<int64_t>(ids.size()) > budget) ids.resize(static_cast<size_t>(budget));
    budget -= static_cast<int64_t>(ids.size());
    for (const nt::DocumentWindow& w : nt::document_windows(static_cast<int>(ids.size()), capacity)) {
      std::vector<int> window(bos ? 1 : 0, session.tokenizer->bos_id());
      window.insert(window.end(), ids.begin() + w.start, ids.begin() + w.end);
      windows.push_back(std::move(window));
    }
  }
  return windows;
}

// The windows through Model::forward, 8 per step, no hook, no logits.
ChildRun plain_prefill(nt::Session& session, const std::string& corpus, int64_t max_tokens) {
  constexpr size_t kWindowsPerStep = 8;  // the scan's default batch
  const std::vector<std::vector<int>> windows = atlas_windows(session, corpus, max_tokens);
  nt::Model& model = *session.model;
  const auto t0 = Clock::now();
  const double cpu0 = cpu_seconds();
  for (size_t i = 0; i < windows.size(); i += kWindowsPerStep) {
    nt::KVCache cache(model.config());
    nt::StepBatch batch;
    for (size_t w = i; w < std::min(windows.size(), i + kWindowsPerStep); ++w) {
      const int seq = static_cast<int>(w - i);
      cache.open(seq, static_cast<int>(windows[w].size()));
      for (size_t p = 0; p < windows[w].size(); ++p) {
        batch.tokens.push_back(windows[w][p]);
        batch.rows.push_back({seq, static_cast<int>(p), false, windows[w][p]});
      }
    }
    model.forward(batch, cache, nullptr, nullptr);
  }
  ChildRun r;
  r.seconds = seconds_since(t0);
  r.cpu_seconds = cpu_seconds() - cpu0;
  r.windows = windows.size();
  return r;
}
// END ATLAS ROWS

// The whole process's peak RSS so far (loading included), across the per-row resets.
long process_peak_rss() { return std::max(g_process_peak_rss, peak_rss_since_reset()); }

// Runs `write` in a child process, so its buffers (~1 GB for GPT-2 small) do not count in our RSS.
void write_in_child(const std::string& dir, const std::function<void()>& write) {
  const auto t0 = Clock::now();
  const pid_t pid = fork();
  if (pid < 0) throw nt::Error("fork failed: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    try {
      write();
      _exit(0);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "nt_bench: error: %s\n", e.what());
      _exit(1);
    }
  }
  int status = 0;
  if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw nt::Error("could not write the benchmark model to " + dir);
  std::fprintf(stderr, "nt_bench: wrote it in %.1f s\n", seconds_since(t0));
}

// Writes the benchmark model when it is missing or stale: a random GPT-NeoX / Gemma-2 shape
// (--arch), or the default GPT-2 / Llama shape. A --model folder must exist.
void ensure_model(const Options& opt) {
  if (!opt.arch.empty()) {
    if (nt::random_family_is_current(opt.model_dir, opt.arch, 0)) return;
    std::fprintf(stderr, "nt_bench: writing random %s to %s ...\n", opt.arch.c_str(), opt.model_dir.c_str());
    std::fflush(stderr);
    write_in_child(opt.model_dir, [&] { nt::write_random_family(opt.model_dir, opt.arch, 0); });
    return;
  }
  if (!opt.default_model) {
    if (!std::filesystem::exists(opt.model_dir + "/config.json"))
      throw nt::Error(opt.model_dir + ": no config.json (write one with make_random_model --out DIR)");
    return;
  }
  const nt::RandomModelSpec& spec = opt.spec;
  if (nt::random_model_is_current(opt.model_dir, spec)) return;
  std::fprintf(stderr, "nt_bench: writing a random %s-shaped model to %s ...\n", spec.arch.c_str(),
               opt.model_dir.c_str());
  std::fflush(stderr);
  write_in_child(opt.model_dir, [&] {
    nt::write_random_model(opt.model_dir, spec, nt::default_random_model_tokenizer_dir(spec.arch));
  });
}

std::string exe_dir() {
  std::error_code ec;
  auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string("build") : p.parent_path().string();
}

int parse_int(const std::string& flag, const std::string& v, int lo, int hi) {
  size_t used = 0;
  int x = 0;
  try {
    x = std::stoi(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != v.size() || x < lo || x > hi)
    throw nt::Error(flag + ": expected an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                    "], got '" + v + "'");
  return x;
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string f = argv[i];
    if (f == "--quick") {
      o.quick = true;
      continue;
    }
    if (f == "--sae") {
      o.sae = true;
      continue;
    }
    if (f == "--tracing-only") {
      o.tracing_only = true;
      continue;
    }
    if (f == "--atlas-only") {
      o.atlas_only = true;
      continue;
    }
    if (f == "--no-formats") {
      o.formats = false;
      continue;
    }
    if (f == "-h" || f == "--help") {
      std::puts("usage: nt_bench [--shape gpt2|llama | --model DIR | --arch pythia-160m|gemma2-2b] [--threads N]\n"
                "                [--json FILE] [--quick] [--no-formats] [--tracing-only] [--sae]\n"
                "                [--atlas-only [--corpus FILE] [--max-tokens N]]");
      std::exit(0);
    }
    if (i + 1 >= argc) throw nt::Error(f + ": missing value");
    const std::string v = argv[++i];
    if (f == "--model") {
      o.model_dir = v;
      o.default_model = false;
    } else if (f == "--shape") {
      if (v != "gpt2" && v != "llama") throw nt::Error("--shape: expected gpt2 or llama, got '" + v + "'");
      if (v == "llama") o.spec = nt::tinyllama_shape();
    } else if (f == "--arch") {
      if (!nt::is_random_family(v)) throw nt::Error("--arch: unknown shape '" + v + "' (pythia-160m, gemma2-2b)");
      o.arch = v;
      o.model_dir = exe_dir() + "/bench-model/" + v;
      o.default_model = false;
    } else if (f == "--threads") {
      o.threads = parse_int(f, v, 1, 256);
    } else if (f == "--json") {
      o.json_path = v;
    } else if (f == "--corpus") {
      o.corpus = v;
    } else if (f == "--max-tokens") {
      o.max_tokens = parse_int(f, v, 1, 1 << 30);
    } else {
      throw nt::Error("unknown option '" + f + "'");
    }
  }
  if (o.default_model) o.model_dir = exe_dir() + "/bench-model/" + (o.spec.arch == "llama" ? "tinyllama" : "gpt2-small");
  return o;
}

// --atlas-only: the atlas rows, printed and written (--json) on their own.
void run_atlas_rows(const Options& opt) {
  const double load_start = load_average();
  const int rounds = opt.quick ? 1 : 3;
  ChildRun atlas, prefill;
  std::vector<double> ratios;
  for (int round = 0; round < rounds; ++round) {
    const ChildRun a = run_in_child(opt.model_dir, [&](nt::Session& s) { return atlas_scan(s, opt.corpus, opt.max_tokens); });
    const ChildRun p = run_in_child(opt.model_dir, [&](nt::Session& s) { return plain_prefill(s, opt.corpus, opt.max_tokens); });
    ratios.push_back(p.seconds / a.seconds);
    for (auto [best, run] : {std::pair{&atlas, &a}, std::pair{&prefill, &p}}) {
      const long rss = std::max(best->peak_rss, run->peak_rss);  // the highest over rounds
      const double cpu = round == 0 ? run->cpu_seconds : std::min(best->cpu_seconds, run->cpu_seconds);
      if (round == 0 || run->seconds < best->seconds) *best = *run;
      best->peak_rss = rss;
      best->cpu_seconds = cpu;  // the least over rounds
    }
  }
  const size_t n_windows = prefill.windows;
  const double prefill_s = prefill.seconds;
  const double load_end = load_average();
  const double atlas_rate = static_cast<double>(atlas.tokens) / atlas.seconds;
  const double prefill_rate = static_cast<double>(atlas.tokens) / prefill_s;
  std::printf("## nt_bench --atlas-only: %s\n\n", opt.model_dir.c_str());
  std::printf("Corpus %s, first %ld tokens (%zu windows of at most %d tokens). Threads: %d. Load average (1 min) at "
              "start %.2f, at end %.2f. Best of %d alternating round%s.\n\n",
              opt.corpus.c_str(), static_cast<long>(atlas.tokens), n_windows, nt::AtlasSettings{}.context,
              opt.threads, load_start, load_end, rounds, rounds == 1 ? "" : "s");
  std::printf("| Run | Corpus tokens | s | Corpus tokens/s | CPU s | Peak RSS |\n|---|---|---|---|---|---|\n");
  std::printf("| atlas: mlp.hook_post + hook_resid_post, %zu units, every statistic, top-20, 20 samples | %ld | %.1f | "
              "%.0f | %.1f | %.1f MB |\n",
              atlas.units, static_cast<long>(atlas.tokens), atlas.seconds, atlas_rate, atlas.cpu_seconds,
              static_cast<double>(atlas.peak_rss) / 1e6);
  std::printf("| plain prefill of the same windows (8 per step, no hook, no logits) | %ld | %.1f | %.0f | %.1f | %.1f MB |\n\n",
              static_cast<long>(atlas.tokens), prefill_s, prefill_rate, prefill.cpu_seconds,
              static_cast<double>(prefill.peak_rss) / 1e6);
  std::string per_round;
  for (double r : ratios) per_round += (per_round.empty() ? "" : ", ") + fmt_percent(r);
  const double ratio = atlas_rate / prefill_rate;
  const double cpu_ratio = prefill.cpu_seconds / atlas.cpu_seconds;
  std::printf("Atlas / plain prefill: %s best over best (goal >= 75%%: %s); per round %s; by CPU time %s (less\n"
              "sensitive to other work on the machine).\n",
              fmt_percent(ratio).c_str(), ratio >= 0.75 ? "met" : "NOT met", per_round.c_str(), fmt_percent(cpu_ratio).c_str());
  if (opt.json_path.empty()) return;
  const json j = {{"model", opt.model_dir},
                  {"threads", opt.threads},
                  {"load_average", {{"start", load_start}, {"end", load_end}}},
                  {"corpus", opt.corpus},
                  {"corpus_tokens", atlas.tokens},
                  {"windows", n_windows},
                  {"units", atlas.units},
                  {"atlas_seconds", atlas.seconds},
                  {"atlas_tokens_per_s", atlas_rate},
                  {"atlas_peak_rss_bytes", atlas.peak_rss},
                  {"prefill_seconds", prefill_s},
                  {"prefill_tokens_per_s", prefill_rate},
                  {"prefill_peak_rss_bytes", prefill.peak_rss},
                  {"atlas_over_prefill", ratio},
                  {"atlas_over_prefill_per_round", ratios},
                  {"atlas_cpu_seconds", atlas.cpu_seconds},
                  {"prefill_cpu_seconds", prefill.cpu_seconds},
                  {"atlas_over_prefill_by_cpu_time", cpu_ratio}};
  nt::write_file_atomic(opt.json_path, j.dump(2) + "\n");
}


}  // namespace

int main(int argc, char** argv) {
  try {
    const Options opt = parse_args(argc, argv);
    nt::fix_malloc_mmap_threshold();  // as the CLI does
#if defined(NT_HAVE_OPENBLAS)
    openblas_set_num_threads(opt.threads);  // the reference SGEMM
#endif
    nt::set_thread_count(opt.threads);
    ensure_model(opt);
    if (opt.atlas_only) {
      run_atlas_rows(opt);
      return 0;
    }
    const auto t_start = Clock::now();
    const double load_start = load_average();
    const double cpu_start = cpu_seconds();

    auto model = nt::load_model(opt.model_dir, nt::WeightFormat::F32);
    const nt::ModelConfig c = model->config();
    const double weight_bytes = static_cast<double>(model->weight_bytes());

    // Sizes: a full run takes ~30 s on an idle 2-core machine (well under the ~3 minute budget
    // even when it is busy); --quick is a smoke run. The model figures are taken in rounds, each
    // round running every row once, and the best round of each row is kept: a burst of other work
    // on the machine then spoils one round of a row, not all of them.
    const int prefill_tokens = std::min(128, c.n_ctx);
    struct DecodePlan {
      int batch, new_tokens;
    };
    std::vector<DecodePlan> plans = opt.quick ? std::vector<DecodePlan>{{1, 6}, {4, 6}, {16, 6}, {45, 6}}
                                              : std::vector<DecodePlan>{{1, 64}, {4, 48}, {16, 64}, {45, 32}};
    if (opt.tracing_only) plans = {{16, opt.quick ? 6 : 64}};
    const int rounds = opt.quick ? 1 : 3;
    const int trace_batch = 16, trace_tokens = opt.quick ? 6 : 64;  // as the batch-16 row

    auto tokenizer = nt::load_tokenizer(opt.model_dir);
    nt::RecorderOptions recorder_options;
    recorder_options.sites = {nt::HookSite::ResidPost, nt::HookSite::MlpPost};
    recorder_options.settings = {nt::Positions::Generated};
    nt::Recorder recorder(c, *tokenizer, recorder_options, std::vector<int>(trace_batch, 0), 1);
    nt::Hooks hooks(c);
    std::vector<nt::HookPoint> observed = {{nt::HookSite::Embed, -1}};
    for (auto site : recorder_options.sites)
      for (int l = 0; l < c.n_layer; ++l) observed.push_back({site.hook, l});
    HookTimer hook_timer;
    hook_timer.attach_start(hooks, observed);
    recorder.attach(hooks);
    hook_timer.attach_stop(hooks, observed);

    struct SaeRow {
      nt::WeightFormat encoder;
      std::unique_ptr<nt::Recorder> recorder;
      std::unique_ptr<nt::Hooks> hooks;
      DecodeResult result;
    };
    std::vector<SaeRow> sae_rows;
    HookTimer sae_timer;  // not attached: the SAE rows report the overhead against the untraced row
    for (nt::WeightFormat f : {nt::WeightFormat::F32, nt::WeightFormat::BF16}) {
      if (!opt.sae) break;
      nt::RecorderOptions ro;
      ro.sites = nt::resolve_trace_sites({}, {random_sae(c, f)}, c);
      ro.settings = {nt::Positions::Generated};
      SaeRow row{f, std::make_unique<nt::Recorder>(c, *tokenizer, ro, std::vector<int>(trace_batch, 0), 1),
                 std::make_unique<nt::Hooks>(c), {}};
      row.recorder->attach(*row.hooks);
      sae_rows.push_back(std::move(row));
    }

    PrefillResult prefill;
    std::vector<DecodeResult> decode(plans.size());
    DecodeResult traced;
    int rounds_done = 0;
    for (int round = 0; round < rounds; ++round) {
      // Time budget: skip the remaining rounds when another one would take the run past ~2.5
      // minutes (a busy machine makes rounds several times slower).
      const double elapsed = seconds_since(t_start);
      if (round > 0 && elapsed + elapsed / round > 150.0) break;
      ++rounds_done;
      if (!opt.tracing_only) {
        const PrefillResult p = bench_prefill(*model, prefill_tokens, opt.quick ? 1 : 2);
        if (round == 0 || p.seconds < prefill.seconds) prefill = p;
      }
      for (size_t i = 0; i < plans.size(); ++i)
        keep_best(decode[i], run_decode(*model, nullptr, plans[i].batch, plans[i].new_tokens));
      keep_best(traced, bench_tracing(*model, &hooks, hook_timer, trace_batch, trace_tokens));
      for (auto& r : sae_rows)
        keep_best(r.result, bench_tracing(*model, r.hooks.get(), sae_timer, trace_batch, trace_tokens));
    }
    const DecodeResult* untraced = nullptr;
    for (const auto& d : decode)
      if (d.batch == trace_batch) untraced = &d;

    const long rss = process_peak_rss();
    const size_t kv_bytes_max = decode.empty() ? 0 : decode.back().kv_bytes;
    model.reset();

    // Reduced-precision weights: batch-1 decode as the float32 row, best of the same rounds.
    struct FormatRow {
      nt::WeightFormat format;
      size_t weight_bytes = 0;
      DecodeResult decode;
    };
    std::vector<FormatRow> format_rows;
    if (opt.formats && !opt.tracing_only)
      for (auto f : {nt::WeightFormat::BF16, nt::WeightFormat::Int8}) {
        auto m = nt::load_model(opt.model_dir, f);
        FormatRow row{f, m->weight_bytes(), {}};
        for (int round = 0; round < rounds_done; ++round)
          keep_best(row.decode, run_decode(*m, nullptr, plans[0].batch, plans[0].new_tokens));
        format_rows.push_back(row);
      }

    const Bandwidth bw = opt.tracing_only ? Bandwidth{} : measure_bandwidth(opt.quick ? (size_t{256} << 20) : (size_t{1} << 30), opt.threads,
                                           opt.quick ? 2 : 10);
    const int gm = 128, gk = 768, gn = 3072;
    const double sgemm_gflops = opt.tracing_only ? 0.0 : measure_sgemm(gm, gk, gn, opt.quick ? 3 : 30);
    const double total_s = seconds_since(t_start);
    const double load_end = load_average();
    // CPU time we got / (wall time x threads): close to 1 on an idle machine (OpenBLAS's workers
    // spin between calls), much lower when other processes share the cores.
    const double cpu_share = (cpu_seconds() - cpu_start) / (total_s * opt.threads);

    // Derived figures.
    auto find = [&](int b) -> const DecodeResult* {
      for (const auto& d : decode)
        if (d.batch == b) return &d;
      return nullptr;
    };
    const DecodeResult* b1 = find(1);
    const double bound_tok_s = bw.read_gbs * 1e9 / weight_bytes;
    const double b1_rate = b1 ? b1->per_seq_tok_s : 0.0;
    const double frac_bound = b1_rate / bound_tok_s;
    const double r16 = find(16) && b1_rate > 0 ? find(16)->aggregate_tok_s / b1_rate : 0.0;
    const double r45 = find(45) && b1_rate > 0 ? find(45)->aggregate_tok_s / b1_rate : 0.0;
    const double prefill_frac = sgemm_gflops > 0 ? prefill.gflops / sgemm_gflops : 0.0;
    const double trace_overhead = untraced && traced.aggregate_tok_s > 0
                                      ? untraced->aggregate_tok_s / traced.aggregate_tok_s - 1.0
                                      : 0.0;
    // Per row: its own peak RSS over the weights plus the KV cache its sequences reserve.
    auto rss_ratio_of = [&](const DecodeResult& d) {
      return d.peak_rss > 0 ? static_cast<double>(d.peak_rss) / (weight_bytes + static_cast<double>(d.kv_bytes)) : 0.0;
    };
    const double rss_ratio = decode.empty() ? 0.0 : rss_ratio_of(decode.back());
    auto format_ratio = [&](nt::WeightFormat f) {
      for (const auto& r : format_rows)
        if (r.format == f && b1_rate > 0) return r.decode.per_seq_tok_s / b1_rate;
      return 0.0;
    };

    // The goals of the engine and performance issues; "at most" goals compare the other way.
    struct Goal {
      std::string key, label;
      double value, target;
      bool at_most;
      std::string unit;  // "x" or "%"
      bool met() const { return at_most ? value <= target : value >= target; }
    };
    std::vector<Goal> goals = {
        {"batch1_fraction_of_bandwidth_bound", "Batch-1 decode / bandwidth bound", frac_bound, 0.85, false, "%"},
        {"batch16_over_batch1", "Batch-16 aggregate / batch-1", r16, 6.0, false, "x"},
        {"batch45_over_batch1", "Batch-45 aggregate / batch-1", r45, 10.0, false, "x"},
        {"tracing_overhead", "Tracing overhead (batch 16, both sites, every neuron)", trace_overhead, 0.05, true,
         "%"},
        {"peak_rss_over_weights_and_kv", "Peak RSS of the largest batch's row / (weights + its KV cache)", rss_ratio, 1.2, true, "x"},
    };
    if (sgemm_gflops > 0 && !opt.tracing_only)
      goals.insert(goals.begin() + 3,
                   {"prefill_fraction_of_sgemm", "Prefill GFLOP/s / SGEMM GFLOP/s", prefill_frac, 0.5, false, "%"});
    if (opt.tracing_only)
      std::erase_if(goals, [](const Goal& g) {
        return g.key != "tracing_overhead" && g.key != "peak_rss_over_weights_and_kv";
      });
    if (opt.formats && !opt.tracing_only) {
      goals.push_back({"bf16_batch1_over_f32", "bf16 batch-1 decode / float32", format_ratio(nt::WeightFormat::BF16),
                       1.7, false, "x"});
      goals.push_back({"int8_batch1_over_f32", "int8 batch-1 decode / float32", format_ratio(nt::WeightFormat::Int8),
                       1.7, false, "x"});
    }
    auto show = [](double v, const std::string& unit) {
      char buf[32];
      if (unit == "%")
        std::snprintf(buf, sizeof buf, "%.1f%%", v * 100);
      else
        std::snprintf(buf, sizeof buf, "%.2fx", v);
      return std::string(buf);
    };

    // ---- Markdown
    std::printf("## nt_bench: %s\n\n", opt.model_dir.c_str());
    std::printf("Model: %d layers, d_model %d, %d heads, d_mlp %d, vocab %d, context %d. Threads: %d.%s\n\n",
                c.n_layer, c.d_model, c.n_head, c.d_mlp, c.vocab_size, c.n_ctx, opt.threads,
                opt.quick ? " (--quick: small counts, numbers are noisy)" : "");
    const bool busy = std::max(load_start, load_end) > 0.5 || cpu_share < 0.8;
    std::printf(
        "Load average (1 min) at start %.2f, at end %.2f; CPU share obtained %.0f%%%s. Model rows: best of "
        "%d "
        "round%s; machine figures: best of several runs.\n\n",
        load_start, load_end, cpu_share * 100, busy ? " (the machine was busy: figures are low)" : "",
        rounds_done, rounds_done == 1 ? "" : "s");
    if (!opt.tracing_only) {
      std::printf("| Measure | Value |\n|---|---|\n");
      std::printf("| Read bandwidth (sum over %.0f MiB, %d threads) | %.1f GB/s |\n",
                  static_cast<double>(bw.bytes) / (1 << 20), opt.threads, bw.read_gbs);
      std::printf("| Copy bandwidth (read + write counted) | %.1f GB/s |\n", bw.copy_gbs);
      if (sgemm_gflops > 0)
        std::printf("| SGEMM %dx%d @ %dx%d (%d threads, OpenBLAS) | %.1f GFLOP/s |\n", gm, gk, gk, gn, opt.threads,
                    sgemm_gflops);
      std::printf("| Weights read per step | %.1f MB |\n", weight_bytes / 1e6);
      std::printf("| Batch-1 bandwidth bound (read BW / weight bytes) | %.1f tokens/s |\n", bound_tok_s);
      std::printf("| Prefill, %d tokens, one step | %.1f ms, %.0f tokens/s |\n", prefill.tokens,
                  prefill.seconds * 1e3, prefill.tokens_per_s);
      std::printf("| Prefill compute rate (%.1f GFLOP) | %.1f GFLOP/s |\n", prefill.gflop, prefill.gflops);
      std::printf("| KV cache at batch %d | %.1f MB |\n", decode.empty() ? 0 : decode.back().batch,
                  static_cast<double>(kv_bytes_max) / 1e6);
      std::printf("| Peak RSS, whole process (loading and every float32 row) | %.1f MB |\n\n",
                  static_cast<double>(rss) / 1e6);
    } else {
      std::printf("Weights %.1f MB; whole-process peak RSS %.1f MB.\n\n", weight_bytes / 1e6,
                  static_cast<double>(rss) / 1e6);
    }

    std::printf(
        "| Decode batch | New tokens | ms / step | Per-sequence tokens/s | Aggregate tokens/s | vs batch 1 "
        "| KV cache | Row's peak RSS | / (weights + KV) |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|\n");
    auto print_row = [&](const std::string& label, const DecodeResult& d) {
      std::printf("| %s | %d | %.1f | %.2f | %.1f | %.2fx | %.1f MB | %.1f MB | %.2fx |\n", label.c_str(), d.new_tokens,
                  d.decode_steps > 0 ? d.decode_s / d.decode_steps * 1e3 : 0.0, d.per_seq_tok_s, d.aggregate_tok_s,
                  b1_rate > 0 ? d.aggregate_tok_s / b1_rate : 0.0, static_cast<double>(d.kv_bytes) / 1e6,
                  static_cast<double>(d.peak_rss) / 1e6, rss_ratio_of(d));
    };
    for (const auto& d : decode) print_row(std::to_string(d.batch), d);
    print_row(std::to_string(traced.batch) + ", traced (recorder: every unit of resid_post + mlp.hook_post)", traced);
    auto sae_overhead = [&](const DecodeResult& d) {
      return untraced && d.aggregate_tok_s > 0 ? untraced->aggregate_tok_s / d.aggregate_tok_s - 1.0 : 0.0;
    };
    for (const auto& r : sae_rows)
      print_row(std::to_string(r.result.batch) + ", traced SAE (24,576 latents, TopK 32, " +
                    nt::weight_format_name(r.encoder) + " encoder)",
                r.result);
    std::printf("\nTraced row: %.1f%% of its wall time inside the recorder's hooks (same run; the overhead below\n"
                "compares two runs, each under its own share of the machine).\n",
                traced.hook_share * 100);
    for (const auto& r : sae_rows)
      std::printf("SAE traced (%s encoder) vs untraced: %+.1f%% (goal <= 30%%).\n", nt::weight_format_name(r.encoder),
                  sae_overhead(r.result) * 100);
    std::printf("\n");

    if (!format_rows.empty()) {
      std::printf("| Weights (--weights) | Weight bytes per step | Batch-1 tokens/s | vs float32 |\n|---|---|---|---|\n");
      std::printf("| f32 | %.1f MB | %.1f | 1.00x |\n", weight_bytes / 1e6, b1_rate);
      for (const auto& r : format_rows)
        std::printf("| %s | %.1f MB | %.1f | %.2fx |\n", nt::weight_format_name(r.format),
                    static_cast<double>(r.weight_bytes) / 1e6, r.decode.per_seq_tok_s, format_ratio(r.format));
      std::printf("\n");
    }

    std::printf("| Goal | Measured | Target | Status |\n|---|---|---|---|\n");
    for (const auto& g : goals)
      std::printf("| %s | %s | %s %s | %s |\n", g.label.c_str(), show(g.value, g.unit).c_str(), g.at_most ? "<=" : ">=",
                  show(g.target, g.unit).c_str(), g.met() ? "met" : "NOT met");
    std::printf("\nWhole run: %.0f s.\n", total_s);

    // ---- JSON
    if (!opt.json_path.empty()) {
      json j;
      j["model"] = {{"dir", opt.model_dir}, {"n_layer", c.n_layer}, {"d_model", c.d_model},
                    {"n_head", c.n_head},   {"d_mlp", c.d_mlp},     {"vocab_size", c.vocab_size},
                    {"n_ctx", c.n_ctx}};
      j["threads"] = opt.threads;
      j["load_average"] = {{"start", load_start}, {"end", load_end}};
      j["cpu_share"] = cpu_share;
      j["rounds"] = rounds_done;
      j["quick"] = opt.quick;
      j["machine"] = {{"read_gb_s", bw.read_gbs},
                      {"copy_gb_s", bw.copy_gbs},
                      {"stream_bytes", bw.bytes},
                      {"sgemm_shape", {gm, gk, gn}},
                      {"sgemm_gflop_s", sgemm_gflops > 0 ? json(sgemm_gflops) : json(nullptr)}};
      j["memory"] = {{"weight_bytes", weight_bytes},
                     {"kv_cache_bytes_max_batch", kv_bytes_max},
                     {"process_peak_rss_bytes", rss}};
      j["prefill"] = {{"tokens", prefill.tokens},
                      {"seconds", prefill.seconds},
                      {"tokens_per_s", prefill.tokens_per_s},
                      {"gflop", prefill.gflop},
                      {"gflop_s", prefill.gflops}};
      auto row = [](const DecodeResult& d) {
        return json{{"batch", d.batch},
                    {"new_tokens", d.new_tokens},
                    {"decode_steps", d.decode_steps},
                    {"decode_tokens", d.decode_tokens},
                    {"decode_seconds", d.decode_s},
                    {"prefill_step_seconds", d.prefill_s},
                    {"per_sequence_tokens_per_s", d.per_seq_tok_s},
                    {"aggregate_tokens_per_s", d.aggregate_tok_s},
                    {"kv_cache_bytes", d.kv_bytes},
                    {"peak_rss_bytes", d.peak_rss}};
      };
      j["decode"] = json::array();
      for (const auto& d : decode) j["decode"].push_back(row(d));
      j["tracing"] = row(traced);
      j["tracing"]["observer"] = "recorder: every neuron of blocks.*.hook_resid_post and blocks.*.mlp.hook_post";
      j["tracing"]["overhead_vs_untraced"] = trace_overhead;
      j["tracing"]["share_in_recorder_hooks"] = traced.hook_share;
      if (opt.sae) j["sae_tracing"] = json::array();
      for (const auto& r : sae_rows) {
        json sr = row(r.result);
        sr["encoder"] = nt::weight_format_name(r.encoder);
        sr["observer"] = "recorder: the 24,576 latents of a random TopK (k 32) SAE at the middle layer's hook_resid_post";
        sr["overhead_vs_untraced"] = sae_overhead(r.result);
        j["sae_tracing"].push_back(sr);
      }
      j["goals"] = json::object();
      for (const auto& g : goals)
        j["goals"][g.key] = {{"value", g.value}, {"target", g.target}, {"at_most", g.at_most}, {"met", g.met()}};
      j["goals"]["batch1_fraction_of_bandwidth_bound"]["bound_tokens_per_s"] = bound_tok_s;
      j["formats"] = json::array();
      for (const auto& r : format_rows)
        j["formats"].push_back({{"weights", nt::weight_format_name(r.format)},
                                {"weight_bytes", r.weight_bytes},
                                {"batch1_tokens_per_s", r.decode.per_seq_tok_s},
                                {"over_f32", format_ratio(r.format)}});
      j["total_seconds"] = total_s;
      nt::write_file_atomic(opt.json_path, j.dump(2) + "\n");
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nt_bench: error: %s\n", e.what());
    return 1;
  }
}
