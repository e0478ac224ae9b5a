#include "runtime/generator.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <string>

#include "util/error.h"
#include "util/option_error.h"
#include "util/thread_pool.h"

namespace nt {

namespace {

struct Running {
  int index;                // prompt index = sequence id
  std::vector<int> tokens;  // prompt + generated so far
  int prompt_len;
  int fed = 0;              // tokens already in the KV cache
  bool finishing = false;   // done sampling; one more step feeds the last token to the hooks
  std::unique_ptr<Sampler> sampler;
};

}  // namespace

std::vector<GenerationResult> Generator::generate(const std::vector<std::vector<int>>& prompts,
                                                  const GenerationConfig& config) {
  const ModelConfig& mc = model_.config();
  validate(config.sampling);
  if (config.max_new_tokens < 0) throw OptionError("generation.max_new_tokens", "must be >= 0");
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (prompts[i].empty()) throw Error("prompt " + std::to_string(i) + " is empty");
    if (static_cast<int>(prompts[i].size()) > mc.n_ctx)
      throw Error("prompt " + std::to_string(i) + " has " + std::to_string(prompts[i].size()) +
                  " tokens, more than the model's context of " + std::to_string(mc.n_ctx));
    const long needed = static_cast<long>(prompts[i].size()) + config.max_new_tokens;
    if (needed > mc.n_ctx)
      throw Error("prompt " + std::to_string(i) + " has " + std::to_string(prompts[i].size()) +
                  " tokens; with " + std::to_string(config.max_new_tokens) + " new tokens it needs " +
                  std::to_string(needed) + " positions, more than the model's context of " +
                  std::to_string(mc.n_ctx) + " (lower --max-new-tokens)");
  }

  std::vector<GenerationResult> results(prompts.size());
  KVCache cache(mc);
  std::deque<int> waiting;
  for (size_t i = 0; i < prompts.size(); ++i)
    if (config.skip.empty() || !config.skip.at(i)) waiting.push_back(static_cast<int>(i));
  std::vector<Running> running;
  GenerationProgress progress{0, static_cast<int>(waiting.size()), 0};
  std::vector<float> logits;
  StepBatch batch;

  auto done = [&](int index) {
    ++progress.sequences_done;
    if (sequence_done_) sequence_done_(index, results[static_cast<size_t>(index)]);
  };
  auto finish = [&](Running& s, const char* reason) {
    GenerationResult& res = results[static_cast<size_t>(s.index)];
    res.prompt_ids.assign(s.tokens.begin(), s.tokens.begin() + s.prompt_len);
    res.generated_ids.assign(s.tokens.begin() + s.prompt_len, s.tokens.end());
    res.stop_reason = reason;
  };

  while (!waiting.empty() || !running.empty()) {
    // Admit waiting prompts while there is room in the batch and in this step's row budget.
    int step_rows = 0;
    for (const auto& s : running) step_rows += config.recompute ? static_cast<int>(s.tokens.size()) : 1;
    while (!waiting.empty() && static_cast<int>(running.size()) < config.max_batch) {
      const int idx = waiting.front();
      const int len = static_cast<int>(prompts[static_cast<size_t>(idx)].size());
      if (!running.empty() && step_rows + len > config.max_step_rows) break;
      waiting.pop_front();
      Running s{idx, prompts[static_cast<size_t>(idx)], len, 0, false,
                std::make_unique<Sampler>(config.sampling, config.sampling_streams.empty()
                                                               ? static_cast<uint64_t>(idx)
                                                               : config.sampling_streams.at(static_cast<size_t>(idx)))};
      s.tokens.reserve(static_cast<size_t>(len + config.max_new_tokens));
      const int capacity = len + config.max_new_tokens;  // checked above to fit the context
      cache.open(idx, capacity);
      step_rows += len;
      if (config.max_new_tokens == 0 && !config.feed_last_token) {
        cache.close(idx);
        finish(s, "length");
        done(idx);
        continue;
      }
      if (config.max_new_tokens == 0) {  // only fed, for the hooks: its result is the prompt
        finish(s, "length");
        s.finishing = true;
      }
      running.push_back(std::move(s));
    }
    if (running.empty()) continue;

    // Build the step: every token of each sequence not yet in the cache (all of it when recomputing).
    batch.tokens.clear();
    batch.rows.clear();
    batch.logit_rows.clear();
    for (auto& s : running) {
      const int from = config.recompute ? 0 : s.fed;
      for (int p = from; p < static_cast<int>(s.tokens.size()); ++p) {
        batch.tokens.push_back(s.tokens[static_cast<size_t>(p)]);
        batch.rows.push_back(RowInfo{s.index, p, p >= s.prompt_len, s.tokens[static_cast<size_t>(p)]});
      }
      if (!s.finishing) batch.logit_rows.push_back(static_cast<int>(batch.rows.size()) - 1);
    }
    logits.resize(batch.logit_rows.size() * static_cast<size_t>(mc.vocab_size));
    model_.forward(batch, cache, hooks_, logits.data());

    // Sample (each sequence has its own sampler and random stream, so the rows are drawn in
    // parallel: a top-k draw over 50257 logits takes ~0.2 ms), then retire finished sequences.
    std::vector<int> drawn(running.size(), -1);
    std::vector<size_t> logit_row(running.size(), 0);
    for (size_t i = 0, li = 0; i < running.size(); ++i)
      if (!running[i].finishing) logit_row[i] = li++;
    thread_pool().parallel_for(running.size(), 1, [&](size_t b, size_t e) {
      for (size_t i = b; i < e; ++i)
        if (!running[i].finishing)
          drawn[i] = running[i].sampler->next(logits.data() + logit_row[i] * static_cast<size_t>(mc.vocab_size),
                                              mc.vocab_size);
    });
    std::vector<Running> still;
    still.reserve(running.size());
    for (size_t i = 0; i < running.size(); ++i) {
      Running& s = running[i];
      s.fed = static_cast<int>(s.tokens.size());
      if (s.finishing) {
        cache.close(s.index);
        done(s.index);
        continue;
      }
      const int tok = drawn[i];
      s.tokens.push_back(tok);
      ++progress.tokens_generated;
      const int n_new = static_cast<int>(s.tokens.size()) - s.prompt_len;
      const char* reason = nullptr;
      if (config.stop_at_eos && mc.eos_id >= 0 && tok == mc.eos_id) reason = "eos";
      else if (n_new >= config.max_new_tokens) reason = "length";
      if (reason) {
        finish(s, reason);
        // The last token was never fed; feed it once more if the hooks want to see it (and it fits).
        if (config.feed_last_token && static_cast<int>(s.tokens.size()) <= cache.capacity(s.index)) {
          s.finishing = true;
          still.push_back(std::move(s));
        } else {
          cache.close(s.index);
          done(s.index);
        }
        continue;
      }
      still.push_back(std::move(s));
    }
    running = std::move(still);
    if (progress_) progress_(progress);
  }
  return results;
}

}  // namespace nt
