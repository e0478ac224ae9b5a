#include "steer/steering.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <random>
#include <set>

#include "sae/sae_steering.h"
#include "util/error.h"
#include "util/option_error.h"
#include "util/quantile.h"
#include "util/thread_pool.h"

namespace nt {

std::vector<std::vector<Neuron>> random_control_sets(const std::vector<Neuron>& exclude, int width, int count,
                                                     uint64_t seed) {
  std::map<int, int> per_layer;
  std::set<Neuron> excluded(exclude.begin(), exclude.end());
  for (const auto& n : exclude) ++per_layer[n.layer];
  std::vector<std::vector<Neuron>> sets;
  for (int r = 0; r < count; ++r) {
    std::mt19937_64 rng(seed * 1000003ULL + static_cast<uint64_t>(r));
    std::vector<Neuron> set;
    for (const auto& [layer, k] : per_layer) {
      std::vector<int> pool;
      for (int i = 0; i < width; ++i)
        if (!excluded.count({layer, i})) pool.push_back(i);
      if (static_cast<int>(pool.size()) < k)
        throw Error("layer " + std::to_string(layer) + " has too few other neurons for a random control");
      // Partial Fisher-Yates with our own index draws (std::uniform_int_distribution is not portable).
      for (int j = 0; j < k; ++j) {
        const size_t pick = static_cast<size_t>(j) + static_cast<size_t>(rng() % (pool.size() - static_cast<size_t>(j)));
        std::swap(pool[static_cast<size_t>(j)], pool[pick]);
        set.push_back({layer, pool[static_cast<size_t>(j)]});
      }
    }
    std::sort(set.begin(), set.end());
    sets.push_back(std::move(set));
  }
  return sets;
}

int count_concept_hits(const std::string& text, const std::vector<std::string>& words, int* total_words) {
  std::set<std::string> targets;
  for (auto w : words) {
    std::transform(w.begin(), w.end(), w.begin(), [](unsigned char c) { return std::tolower(c); });
    targets.insert(w);
    targets.insert(w + "s");
  }
  int hits = 0, total = 0;
  std::string cur;
  auto flush = [&] {
    if (cur.empty()) return;
    ++total;
    hits += targets.count(cur) ? 1 : 0;
    cur.clear();
  };
  for (unsigned char c : text) {
    if (std::isalnum(c) || c == '\'' || c >= 0x80) cur.push_back(static_cast<char>(std::tolower(c)));
    else flush();
  }
  flush();
  if (total_words) *total_words = total;
  return hits;
}

void log_softmax(const float* x, int n, std::vector<double>& out) {
  out.resize(static_cast<size_t>(n));
  double mx = x[0];
  for (int i = 1; i < n; ++i) mx = std::max(mx, static_cast<double>(x[i]));
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += std::exp(x[i] - mx);
  const double lse = mx + std::log(sum);
  for (int i = 0; i < n; ++i) out[static_cast<size_t>(i)] = x[i] - lse;
}

namespace {

// Logits at the positions that predict each generated token (prompt_len-1 .. total-2), for
// `copies` copies of the same tokens run as sequences 0 .. copies-1 of one step (interventions in
// `hooks` pick their copies by sequence id): [copy][position][vocab]. A row's results do not
// depend on the other rows of its step, so each copy gets what it would get alone.
std::vector<float> teacher_forced_logits(Model& model, const Hooks* hooks, const std::vector<int>& tokens,
                                         int prompt_len, int copies) {
  const ModelConfig& c = model.config();
  const int n = static_cast<int>(tokens.size());
  KVCache cache(c);
  StepBatch batch;
  for (int s = 0; s < copies; ++s) {
    cache.open(s, n);
    for (int p = 0; p < n; ++p) {
      batch.tokens.push_back(tokens[static_cast<size_t>(p)]);
      batch.rows.push_back({s, p, p >= prompt_len, tokens[static_cast<size_t>(p)]});
      if (p >= prompt_len - 1 && p + 1 < n) batch.logit_rows.push_back(static_cast<int>(batch.rows.size()) - 1);
    }
  }
  std::vector<float> logits(batch.logit_rows.size() * static_cast<size_t>(c.vocab_size));
  model.forward(batch, cache, hooks, logits.data());
  return logits;
}

void check_sae_steering(const SteeringOptions& opt, const ModelConfig& config) {
  const Sae& sae = *opt.sae.sae;
  sae.hook_point(config);
  check_sae_latents(sae, opt.sae.latents);
  if (opt.controls < 0) throw OptionError("steer.controls", "must be >= 0");
  if (opt.sae.direction && opt.intervention.mode != InterventionMode::Add)
    throw OptionError("steer.direction", "direction steering adds S x W_dec[i]: its mode is add:S");
  if (opt.intervention.mode == InterventionMode::Mean && opt.sae.latent_means.size() != static_cast<size_t>(sae.d_sae()))
    throw OptionError("steer.mode", "mean needs the mean of every latent of " + sae.source() +
                                        " (each latent's mean over baseline prompts)");
}

}  // namespace

void check_steering_options(const SteeringOptions& opt, const ModelConfig& config) {
  if (opt.sae.sae) return check_sae_steering(opt, config);
  Intervention iv = opt.intervention;
  iv.means.clear();  // validate() wants them for mode mean; they come from site_means here
  if (iv.mode == InterventionMode::Mean) iv.means.assign(iv.neurons.size(), 0.0f);
  validate(iv, config);
  if (opt.controls < 0) throw OptionError("steer.controls", "must be >= 0");
  if (opt.intervention.mode == InterventionMode::Mean &&
      opt.site_means.size() != static_cast<size_t>(config.n_layer) * site_width(iv.site, config))
    throw OptionError("steer.mode", "mean needs the baseline mean of every neuron of " + site_name(iv.site) +
                                        " (neurons taken from a trace that has a baseline)");
}

namespace {

// Mode mean: each neuron's baseline mean, taken from the site's means; other modes: none.
Intervention with_means(Intervention iv, const std::vector<float>& site_means, int width) {
  iv.means.clear();
  if (iv.mode == InterventionMode::Mean)
    for (const auto& n : iv.neurons) iv.means.push_back(site_means[static_cast<size_t>(n.layer) * width + n.index]);
  return iv;
}

std::vector<Neuron> latents_as_units(const std::vector<int>& latents) {
  std::vector<Neuron> units;
  for (int i : latents) units.push_back({0, i});
  return units;
}

std::string describe_sae_steering(const SteeringOptions& opt) {
  const SaeSteering& s = opt.sae;
  std::string latents;
  for (int i : s.latents) {
    if (!latents.empty()) latents += ',';
    latents += std::to_string(i);
  }
  const std::string mode = mode_text(opt.intervention.mode, opt.intervention.value);
  return fmt::format("{} SAE latents {} of {} at {} ({})",
                     s.direction ? "direction " + mode + " x W_dec of" : mode + " (error term kept) on", latents,
                     s.sae->source(), s.sae->config().hook_name, where_text(opt.intervention.where));
}

// Registers the hooks of one variant: `units` (neurons, or latents as {0, i}) steered in `seqs`.
void add_variant(Hooks& hooks, const ModelConfig& c, const SteeringOptions& opt, const std::vector<Neuron>& units,
                 std::vector<int> seqs) {
  if (!opt.sae.sae) {
    Intervention iv = opt.intervention;
    iv.neurons = units;
    iv = with_means(iv, opt.site_means, site_width(iv.site, c));
    iv.only_seqs = std::move(seqs);
    return add_intervention(hooks, iv);
  }
  std::vector<int> latents;
  for (const auto& u : units) latents.push_back(u.index);
  if (opt.sae.direction)
    return add_sae_direction_add(hooks, c, opt.sae.sae,
                                 {latents, opt.intervention.value, opt.intervention.where, std::move(seqs)});
  SaeLatentEdit edit{latents, opt.intervention.mode, opt.intervention.value, {}, opt.intervention.where, std::move(seqs)};
  if (edit.mode == InterventionMode::Mean)
    for (int i : latents) edit.means.push_back(opt.sae.latent_means[static_cast<size_t>(i)]);
  add_sae_latent_edit(hooks, c, opt.sae.sae, edit);
}

}  // namespace

SteeringResult run_steering(Session& session, const std::vector<std::string>& prompts, const SteeringOptions& opt) {
  Model& model = *session.model;
  const ModelConfig& c = model.config();
  check_steering_options(opt, c);
  if (prompts.empty()) throw Error("no prompt to steer");
  const int width = site_width(opt.intervention.site, c);

  SteeringResult result;
  result.intervention = with_means(opt.intervention, opt.site_means, width);
  result.sae = opt.sae;
  result.description = opt.sae.sae ? describe_sae_steering(opt) : result.intervention.describe();
  const std::vector<Neuron> steered = opt.sae.sae ? latents_as_units(opt.sae.latents) : opt.intervention.neurons;
  result.control_sets = random_control_sets(steered, opt.sae.sae ? opt.sae.sae->d_sae() : width, opt.controls,
                                            opt.control_seed);

  // Variants: 0 unsteered, 1 steered, 2.. controls. Sequence id = prompt * n_variants + variant.
  const int n_var = 2 + opt.controls;
  const int n_prompts = static_cast<int>(prompts.size());
  std::vector<std::vector<Neuron>> variants(static_cast<size_t>(n_var));
  variants[1] = steered;
  for (int r = 0; r < opt.controls; ++r) variants[static_cast<size_t>(2 + r)] = result.control_sets[static_cast<size_t>(r)];
  auto install = [&](Hooks& h, int v, std::vector<int> seqs) {
    add_variant(h, c, opt, variants[static_cast<size_t>(v)], std::move(seqs));
  };
  auto prompt_ids = session.encode_prompts(prompts);
  std::vector<std::vector<int>> seq_prompts;
  GenerationConfig gen = opt.gen;
  gen.sampling_streams.clear();
  for (int p = 0; p < n_prompts; ++p)
    for (int v = 0; v < n_var; ++v) {
      seq_prompts.push_back(prompt_ids[static_cast<size_t>(p)]);
      gen.sampling_streams.push_back(static_cast<uint64_t>(p));
    }
  Hooks hooks(c);
  for (int v = 1; v < n_var; ++v) {
    std::vector<int> seqs;
    for (int p = 0; p < n_prompts; ++p) seqs.push_back(p * n_var + v);
    install(hooks, v, std::move(seqs));
  }
  Generator generator(model, &hooks);
  auto generations = generator.generate(seq_prompts, gen);

  std::vector<int> concept_tokens;
  {
    std::set<int> firsts;
    for (const auto& w : opt.concept_words) {
      if (w.empty()) continue;
      std::string cap = w;
      cap[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(cap[0])));
      for (const std::string& form : {" " + w, " " + cap, w}) {
        auto ids = session.tokenizer->encode(form);
        if (!ids.empty()) firsts.insert(ids[0]);
      }
    }
    concept_tokens.assign(firsts.begin(), firsts.end());
  }

  for (int p = 0; p < n_prompts; ++p) {
    SteeredPrompt sp;
    sp.prompt = prompts[static_cast<size_t>(p)];
    sp.prompt_ids = prompt_ids[static_cast<size_t>(p)];
    const auto& ref = generations[static_cast<size_t>(p * n_var)];
    sp.unsteered_ids = ref.generated_ids;
    sp.steered_ids = generations[static_cast<size_t>(p * n_var + 1)].generated_ids;
    sp.unsteered_text = decode_continuation(*session.tokenizer, sp.prompt_ids, sp.unsteered_ids);
    sp.steered_text = decode_continuation(*session.tokenizer, sp.prompt_ids, sp.steered_ids);
    const size_t common = std::min(sp.unsteered_ids.size(), sp.steered_ids.size());
    for (size_t i = 0; i < common && sp.first_divergence < 0; ++i)
      if (sp.unsteered_ids[i] != sp.steered_ids[i]) sp.first_divergence = static_cast<int>(i);
    if (sp.first_divergence < 0 && sp.unsteered_ids.size() != sp.steered_ids.size())
      sp.first_divergence = static_cast<int>(common);

    // Teacher-forced passes over prompt + unsteered continuation, one per variant (variant 0, the
    // unsteered model, is the reference), several variants per forward step: as many as keep the
    // step's logits within ~64 MB.
    std::vector<int> tokens = sp.prompt_ids;
    tokens.insert(tokens.end(), sp.unsteered_ids.begin(), sp.unsteered_ids.end());
    const int plen = static_cast<int>(sp.prompt_ids.size());
    const size_t V = static_cast<size_t>(c.vocab_size);
    const size_t n_pos = tokens.size() - static_cast<size_t>(plen);  // positions with a next token
    const size_t per_variant = std::max<size_t>(1, n_pos) * V * sizeof(float);
    const int chunk = static_cast<int>(std::clamp<size_t>((size_t{64} << 20) / per_variant, 1, static_cast<size_t>(n_var)));
    // The reference distribution per position, once: log-probabilities and probabilities.
    std::vector<std::vector<double>> ref_lp, ref_p;
    std::vector<EffectMeasures> measures(static_cast<size_t>(n_var));
    for (int v0 = 0; v0 < n_var; v0 += chunk) {
      const int nv = std::min(chunk, n_var - v0);
      Hooks chunk_hooks(c);
      for (int j = 0; j < nv; ++j) {
        if (v0 + j == 0) continue;
        install(chunk_hooks, v0 + j, {j});
      }
      const std::vector<float> logits = teacher_forced_logits(model, &chunk_hooks, tokens, plen, nv);
      // Positions are independent: spread over the pool, each position's numbers computed alone
      // and summed below in position order (the same result for any thread count).
      if (v0 == 0) {
        ref_lp.resize(n_pos);
        ref_p.resize(n_pos);
        thread_pool().parallel_for(n_pos, 1, [&](size_t b, size_t e) {
          for (size_t i = b; i < e; ++i) {
            log_softmax(logits.data() + i * V, c.vocab_size, ref_lp[i]);
            ref_p[i].resize(V);
            for (size_t t = 0; t < V; ++t) ref_p[i][t] = std::exp(ref_lp[i][t]);
          }
        });
      }
      for (int j = 0; j < nv; ++j) {
        const int v = v0 + j;
        EffectMeasures& m = measures[static_cast<size_t>(v)];
        const auto& text_ids = generations[static_cast<size_t>(p * n_var + v)].generated_ids;
        m.hits = count_concept_hits(decode_continuation(*session.tokenizer, sp.prompt_ids, text_ids),
                                    opt.concept_words, &m.words);
        m.hit_rate = m.words ? static_cast<double>(m.hits) / m.words : 0.0;
        const float* vl = logits.data() + static_cast<size_t>(j) * n_pos * V;
        std::vector<double> kl_at(n_pos, 0.0), clp_at(n_pos, 0.0);
        thread_pool().parallel_for(n_pos, 1, [&](size_t b, size_t e) {
          thread_local std::vector<double> lp_var;
          for (size_t i = b; i < e; ++i) {
            const std::vector<double>& lr = ref_lp[i];
            const std::vector<double>& pr = ref_p[i];
            log_softmax(vl + i * V, c.vocab_size, lp_var);
            double k = 0.0;
            if (v > 0)
              for (size_t t = 0; t < V; ++t) k += pr[t] * (lr[t] - lp_var[t]);
            kl_at[i] = std::max(0.0, k);
            if (!concept_tokens.empty()) {
              double mass = 0.0;
              for (int t : concept_tokens) mass += std::exp(lp_var[static_cast<size_t>(t)]);
              clp_at[i] = std::log(std::max(mass, 1e-300));
            }
          }
        });
        double kl = 0.0, clp = 0.0;
        for (size_t i = 0; i < n_pos; ++i) {
          kl += kl_at[i];
          clp += clp_at[i];
        }
        m.kl = n_pos ? kl / static_cast<double>(n_pos) : 0.0;
        m.concept_logprob = n_pos ? clp / static_cast<double>(n_pos) : 0.0;
      }
    }
    sp.unsteered = measures[0];
    sp.steered = measures[1];
    sp.controls.assign(measures.begin() + 2, measures.end());
    result.prompts.push_back(std::move(sp));
  }

  // Summary over prompts: mean per variant, then the effect within the control distribution.
  auto mean_over_prompts = [&](auto getter, int variant) {
    double s = 0.0;
    for (const auto& sp : result.prompts) {
      const EffectMeasures& m = variant == 0 ? sp.unsteered : variant == 1 ? sp.steered : sp.controls[static_cast<size_t>(variant - 2)];
      s += getter(m);
    }
    return s / static_cast<double>(result.prompts.size());
  };
  struct Measure {
    const char* name;
    double (*get)(const EffectMeasures&);
    bool relative;  // effect = variant - unsteered
  };
  const Measure list[] = {{"kl", [](const EffectMeasures& m) { return m.kl; }, false},
                          {"hit_rate", [](const EffectMeasures& m) { return m.hit_rate; }, true},
                          {"concept_logprob", [](const EffectMeasures& m) { return m.concept_logprob; }, true}};
  for (const auto& ms : list) {
    const double base = ms.relative ? mean_over_prompts(ms.get, 0) : 0.0;
    ControlSummary s;
    s.measure = ms.name;
    s.effect = mean_over_prompts(ms.get, 1) - base;
    std::vector<double> ctl;
    for (int r = 0; r < opt.controls; ++r) ctl.push_back(mean_over_prompts(ms.get, 2 + r) - base);
    s.median = quantile(ctl, 0.5);
    s.p5 = quantile(ctl, 0.05);
    s.p95 = quantile(ctl, 0.95);
    s.percentile = percent_rank(ctl, s.effect);
    result.summary.push_back(s);
  }
  return result;
}

}  // namespace nt
