// neurontrace steer: generate with and without an intervention on chosen neurons or SAE latents (same
// seed), show the texts side by side, and measure the effect against random controls.
#include <sys/ioctl.h>
#include <unistd.h>

#include <fmt/format.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "steer/steer_run.h"

namespace nt::cli {

namespace {

struct SteerOptions {
  std::string model;
  SteerRunOptions run;
  const CLI::Option* mode_flag = nullptr;  // given on the command line: count() > 0
  bool json = false;
  std::string out;
};

int terminal_width() {
  if (!::isatty(1)) return 0;
  winsize w{};
  if (::ioctl(1, TIOCGWINSZ, &w) != 0) return 0;
  return w.ws_col;
}

// Splits text into lines of at most `width` bytes, breaking at spaces where possible.
std::vector<std::string> wrap(const std::string& text, size_t width) {
  std::vector<std::string> lines;
  std::string line;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n') {
      lines.push_back(line);
      line.clear();
      continue;
    }
    line.push_back(c);
    if (line.size() >= width) {
      size_t cut = line.rfind(' ');
      if (cut == std::string::npos || cut < width / 2) cut = line.size();
      // never cut inside a UTF-8 sequence
      while (cut < line.size() && cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
      lines.push_back(line.substr(0, cut));
      line = line.substr(cut == line.size() ? cut : cut + (line[cut] == ' ' ? 1 : 0));
    }
  }
  lines.push_back(line);
  return lines;
}

size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string marked(const Tokenizer& tok, const std::vector<int>& prompt, const std::vector<int>& ids, int divergence) {
  if (divergence < 0) return decode_continuation(tok, prompt, ids);
  std::vector<int> head(ids.begin(), ids.begin() + std::min<size_t>(ids.size(), static_cast<size_t>(divergence)));
  std::vector<int> tail(ids.begin() + static_cast<long>(head.size()), ids.end());
  std::vector<int> context = prompt;
  context.insert(context.end(), head.begin(), head.end());
  return decode_continuation(tok, prompt, head) + "▶" + decode_continuation(tok, context, tail);
}

void print_side_by_side(const std::string& a_title, const std::string& a, const std::string& b_title,
                        const std::string& b, int width) {
  if (width >= 100) {
    const size_t col = static_cast<size_t>((width - 3) / 2);
    auto la = wrap(a, col), lb = wrap(b, col);
    auto pad = [&](const std::string& s) { return s + std::string(col - std::min(col, display_width(s)), ' '); };
    std::cout << pad(a_title) << " | " << b_title << "\n" << std::string(col, '-') << "-+-" << std::string(col, '-') << "\n";
    for (size_t i = 0; i < std::max(la.size(), lb.size()); ++i)
      std::cout << pad(i < la.size() ? la[i] : "") << " | " << (i < lb.size() ? lb[i] : "") << "\n";
  } else {
    std::cout << "--- " << a_title << " ---\n" << a << "\n--- " << b_title << " ---\n" << b << "\n";
  }
}

int report(const SteerOptions& o, const Session& session, const SteeringResult& r);

int run_steer_command(SteerOptions& o) {
  o.run.mode_given = o.mode_flag->count() > 0;
  SteerPlan plan = plan_steer(o.run);
  Session session = open_session(o.model);
  return report(o, session, run_steer(session, o.run, std::move(plan)));
}

int report(const SteerOptions& o, const Session& session, const SteeringResult& r) {
  const nlohmann::json j = steer_json(r, model_identity(session.model_dir, session.model->config()), o.run);
  if (!o.out.empty()) write_output(o.out, j.dump(1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  if (o.json) {
    std::cout << j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) << "\n";
    return 0;
  }
  const int width = terminal_width();
  std::cout << "Intervention: " << r.description << "\n\n";
  for (const auto& p : r.prompts) {
    std::cout << "Prompt: " << p.prompt << "\n";
    if (p.first_divergence < 0) std::cout << "(steered text is identical to the unsteered text)\n";
    else std::cout << "(texts diverge at generated token " << p.first_divergence << ", marked ▶)\n";
    print_side_by_side("unsteered", marked(*session.tokenizer, p.prompt_ids, p.unsteered_ids, p.first_divergence), "steered",
                       marked(*session.tokenizer, p.prompt_ids, p.steered_ids, p.first_divergence), width);
    std::cout << "\n";
  }
  if (r.sae.sae)
    std::cout << fmt::format("Effect against {} random controls ({} other latents of the same SAE each)\n", o.run.controls,
                             r.sae.latents.size());
  else
    std::cout << fmt::format("Effect against {} random controls ({} neurons each, same site and layers)\n", o.run.controls,
                             r.intervention.neurons.size());
  std::cout << "Measure            Effect   Control median   Control 5%..95%        Percentile\n";
  for (const auto& s : r.summary)
    std::cout << fmt::format("{:<16} {:>9.4f}   {:>14.4f}   {:>9.4f}..{:<9.4f}   {:>9.1f}%\n", s.measure, s.effect,
                             s.median, s.p5, s.p95, s.percentile);
  std::cout << "(kl: mean next-token KL from the unsteered model on its own text; hit_rate and concept_logprob:\n"
               " steered minus unsteered. Percentile: share of controls below the effect, ties counted half.)\n";
  return 0;
}

}  // namespace

Command add_steer(CLI::App& app) {
  auto o = std::make_shared<SteerOptions>();
  o->run.gen.max_new_tokens = 32;
  CLI::App* cmd = app.add_subcommand("steer", "Generate with neurons or SAE latents switched off or on, and measure the effect");
  cmd->add_option("-m,--model", o->model, "Model folder in Hugging Face layout")->required();
  cmd->add_option("-p,--prompt", o->run.prompts, "Prompt text (repeatable)");
  cmd->add_option("--prompts", o->run.prompts_file, "JSON file {\"prompts\": [...]}");
  cmd->add_option("--ablate", o->run.ablate, "Neurons to steer: L11N197,L11N373 or 11:197,11:373");
  cmd->add_option("--sae", o->run.sae, "Steer this SAE's latents: a SAELens folder, a params.npz, or a Hub id ORG/REPO/FOLDER");
  cmd->add_option("--latents", o->run.latents, "With --sae: the latents to steer (comma-separated)")->delimiter(',');
  cmd->add_option("--direction", o->run.direction, "With --sae: add:S adds S x W_dec[i] of each latent, without encoding");
  cmd->add_option("--baseline", o->run.baseline,
                  "With --sae --mode mean: prompts, JSON {\"prompts\": [...]}, whose tokens give each latent's mean");
  add_sae_flags(*cmd, o->run.sae_options);
  cmd->add_option("--site", o->run.site,
                  "Hook site of the neurons, every layer: hook_resid_post (default, or the trace's), mlp.hook_post, "
                  "blocks.*.mlp.hook_pre, ... (the model must fire it)");
  o->mode_flag = cmd->add_option("--mode", o->run.mode, "zero, mean, scale:F, set:V, add:V")->capture_default_str();
  cmd->add_option("--where", o->run.where, "Positions steered: all, prompt, generated")->capture_default_str();
  cmd->add_option("--from-trace", o->run.from_trace, "Take the neurons from a trace.json");
  cmd->add_option("--top", o->run.top, "With --from-trace: how many of its top consistent neurons");
  cmd->add_option("--trace-positions", o->run.trace_positions, "With --from-trace: which positions setting's table");
  cmd->add_option("--concept-words", o->run.concept_words, "Words of the concept, for the concept score (comma-separated)")
      ->delimiter(',');
  cmd->add_option("--controls", o->run.controls, "Random control runs (other neurons, or other latents of the SAE)")->capture_default_str()->check(CLI::Range(0, 1000));
  cmd->add_option("--control-seed", o->run.control_seed, "Seed of the random controls")->capture_default_str();
  add_generation_flags(*cmd, o->run.gen);
  cmd->add_flag("--json", o->json, "Print texts, token ids and all measures as JSON");
  cmd->add_option("--out", o->out, "Also write the JSON to this file");
  return {cmd, naming_flags({{"steer.top_n", "--top"},
                             {"steer.controls", "--controls"},
                             {"steer.mode", "--mode"},
                             {"steer.direction", "--direction"}},
                            [o] { return run_steer_command(*o); })};
}

}  // namespace nt::cli
