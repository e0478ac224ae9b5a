// neurontrace generate: continue prompts with a model, batched, greedy or sampled.
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "io/prompts_file.h"
#include "runtime/session.h"
#include "sae/sae.h"
#include "trace/top_latents.h"
#include "util/error.h"

namespace nt::cli {

void add_generation_flags(CLI::App& cmd, GenerationConfig& config) {
  // The ranges are the library's rules (nt::validate, Generator), reported with these flags' names.
  cmd.add_option("-n,--max-new-tokens", config.max_new_tokens, "New tokens per prompt")->capture_default_str();
  cmd.add_option("--temperature", config.sampling.temperature, "Sampling temperature (0 = greedy)")
      ->capture_default_str();
  cmd.add_option("--top-k", config.sampling.top_k, "Sampling: keep the K most likely tokens (0 = off)")->capture_default_str();
  cmd.add_option("--top-p", config.sampling.top_p, "Nucleus sampling mass (1 = off)")->capture_default_str();
  cmd.add_option("--seed", config.sampling.seed, "Random seed (per prompt: seed and prompt index)")
      ->capture_default_str();
  cmd.add_flag_callback("--no-stop", [&config] { config.stop_at_eos = false; }, "Do not stop at end-of-text");
  cmd.add_option("--batch", config.max_batch, "Sequences generated together")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
}

namespace {

struct GenerateOptions {
  std::string model;
  std::vector<std::string> prompts;
  std::string prompts_file;
  GenerationConfig gen;
  bool json = false;
  std::vector<std::string> saes;
  int top_latents = 5;
};

// Per SAE, each generated token's top latents: [{"sae", "site", "tokens": [{"position", "token",
// "top": [[latent, value], ...]}]}].
nlohmann::json latents_json(const TopLatents& top, size_t seq) {
  nlohmann::json out = nlohmann::json::array();
  for (size_t s = 0; s < top.sites().size(); ++s) {
    nlohmann::json tokens = nlohmann::json::array();
    for (const TokenLatents& t : top.tokens(s)[seq]) {
      nlohmann::json best = nlohmann::json::array();
      for (const LatentValue& l : t.top) best.push_back({l.latent, l.value});
      tokens.push_back({{"position", t.pos}, {"token", t.token}, {"top", best}});
    }
    out.push_back({{"sae", top.sites()[s].sae->source()}, {"site", top.sites()[s].name()}, {"tokens", tokens}});
  }
  return out;
}

int run_generate(const GenerateOptions& o) {
  std::vector<std::string> texts = o.prompts;
  if (!o.prompts_file.empty())
    for (auto& p : load_prompts(o.prompts_file)) texts.push_back(p);
  if (texts.empty()) throw Error("no prompt given (use -p TEXT or --prompts FILE.json)");
  if (!o.saes.empty() && !o.json) throw Error("--sae lists each token's top latents in the JSON: add --json");
  Session session = open_session(o.model);
  auto ids = session.encode_prompts(texts);
  GenerationConfig gen = o.gen;
  Hooks hooks(session.model->config());
  std::unique_ptr<TopLatents> top;
  if (!o.saes.empty()) {
    const ModelConfig& mc = session.model->config();
    top = std::make_unique<TopLatents>(resolve_trace_sites({}, load_saes(o.saes, mc), mc), o.top_latents,
                                       static_cast<int>(ids.size()));
    top->attach(hooks);
    gen.feed_last_token = true;  // the last generated token gets its latents too
  }
  Generator generator(*session.model, top ? &hooks : nullptr);
  Progress progress("generate");
  generator.on_progress([&](const GenerationProgress& p) { progress.update(p); });
  auto results = generator.generate(ids, gen);

  if (o.json) {
    nlohmann::json out = nlohmann::json::array();
    for (size_t i = 0; i < results.size(); ++i) {
      out.push_back({{"prompt", texts[i]},
                     {"prompt_ids", results[i].prompt_ids},
                     {"generated_ids", results[i].generated_ids},
                     {"text", decode_continuation(*session.tokenizer, results[i].prompt_ids, results[i].generated_ids)},
                     {"stop_reason", results[i].stop_reason}});
      if (top) out.back()["sae_latents"] = latents_json(*top, i);
    }
    std::cout << out.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  for (size_t i = 0; i < results.size(); ++i) {
    if (results.size() > 1) std::cout << (i ? "\n" : "") << "=== prompt " << i << " ===\n";
    std::cout << texts[i] << decode_continuation(*session.tokenizer, results[i].prompt_ids, results[i].generated_ids)
              << "\n";
  }
  return 0;
}

}  // namespace

Command add_generate(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Continue prompts with a model");
  cmd->add_option("-m,--model", o->model, "Model folder in Hugging Face layout")->required();
  cmd->add_option("-p,--prompt", o->prompts, "Prompt text (repeatable)");
  cmd->add_option("--prompts", o->prompts_file, "JSON file {\"prompts\": [...]}");
  add_generation_flags(*cmd, o->gen);
  cmd->add_flag("--json", o->json, "Print prompt ids, generated ids and text as JSON");
  cmd->add_option("--sae", o->saes,
                  "With --json: each generated token's top latents of this SAE (SAELens folder or Gemma Scope "
                  "params.npz; repeatable)");
  cmd->add_option("--top-latents", o->top_latents, "Latents listed per token with --sae")->capture_default_str();
  return {cmd, naming_flags({}, [o] { return run_generate(*o); })};
}

}  // namespace nt::cli
