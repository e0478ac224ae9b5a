#include "study/study_runner.h"

#include <algorithm>
#include <filesystem>
#include <fmt/format.h>
#include <ostream>

#include "analysis/consistency.h"
#include "analysis/overlap.h"
#include "io/model_identity.h"
#include "report/consistency_table.h"
#include "report/heatmap.h"
#include "report/html_report.h"
#include "report/neuron_page.h"
#include "report/trace_json.h"
#include "runtime/session.h"
#include "steer/steering.h"
#include "steer/steering_json.h"
#include "study/checkpoint.h"
#include "study/study_config.h"
#include "trace/neuron_capture.h"
#include "trace/recorder.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace nt {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

std::string hex64(uint64_t h) { return fmt::format("{:016x}", h); }

uint64_t fnv1a(const std::string& s, uint64_t h = 0xcbf29ce484222325ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// A file-system-safe version of a concept name.
std::string slug(const std::string& s) {
  std::string out;
  for (unsigned char c : s) out += std::isalnum(c) ? static_cast<char>(c) : '_';
  return out.empty() ? "_" : out;
}

void write_out(const std::string& path, const std::string& contents) {
  make_directories(fs::path(path).parent_path().string());
  write_file_atomic(path, contents);
}

struct Groups {
  std::vector<std::string> names;         // 0 = baseline, then the concepts
  std::vector<std::vector<int>> seqs;     // per group, global sequence ids
  std::vector<std::string> texts;         // per sequence
  std::vector<int> group_of_seq;
};

Groups make_groups(const StudyConfig& cfg) {
  Groups g;
  auto add = [&](const std::string& name, const std::vector<std::string>& prompts) {
    const int gi = static_cast<int>(g.names.size());
    g.names.push_back(name);
    g.seqs.emplace_back();
    for (const auto& p : prompts) {
      g.seqs.back().push_back(static_cast<int>(g.texts.size()));
      g.texts.push_back(p);
      g.group_of_seq.push_back(gi);
    }
  };
  add("baseline", cfg.baseline);
  for (const auto& [name, prompts] : cfg.concepts) add(name, prompts);
  return g;
}

size_t setting_index(const StudyConfig& cfg, const std::string& name) {
  for (size_t s = 0; s < cfg.positions.size(); ++s)
    if (positions_name(cfg.positions[s]) == name) return s;
  throw Error(cfg.path + ": positions '" + name + "' are not traced by this study");
}

// The setting the neuron pages and the steering use: "generated" when traced, else the first.
size_t main_setting(const StudyConfig& cfg) {
  for (size_t s = 0; s < cfg.positions.size(); ++s)
    if (cfg.positions[s] == Positions::Generated) return s;
  return 0;
}

std::string setting_title(Positions p) {
  switch (p) {
    case Positions::Last: return "Last token only";
    case Positions::Generated: return "All generated tokens";
    case Positions::Prompt: return "Prompt tokens";
    case Positions::All: return "Prompt and generated tokens";
  }
  return "";
}

}  // namespace

StudyOutcome run_study(const StudyOptions& opt) {
  if (opt.out_dir.empty()) throw Error("study needs --out DIR");
  StudyConfig cfg = load_study_config(opt.config_path);
  const std::string model_name = opt.model.empty() ? cfg.model : opt.model;
  if (model_name.empty()) throw Error(cfg.path + ": no model (set \"model\" or give --model)");
  Session session = open_session(model_name);
  const ModelConfig& mc = session.model->config();
  const ModelIdentity identity = model_identity(session.model_dir, mc);
  try {
    check_analysis_options(cfg.analysis, NeuronLayout(cfg.sites, mc), true);
  } catch (const Error& e) {
    throw Error(cfg.path + ": " + e.what());
  }

  Groups groups = make_groups(cfg);
  auto prompt_ids = session.encode_prompts(groups.texts);
  std::unique_ptr<TokenSelector> selector;
  if (!cfg.select_words.empty() || !cfg.select_regex.empty())
    selector = std::make_unique<TokenSelector>(cfg.select_words, cfg.select_regex, cfg.select_window);
  RecorderOptions ro;
  ro.sites = cfg.sites;
  ro.settings = cfg.positions;
  ro.skip_first = cfg.skip_first;
  ro.selector = selector.get();
  Recorder rec(mc, *session.tokenizer, ro, groups.group_of_seq, static_cast<int>(groups.names.size()));

  // What a checkpoint must agree on to be reused: the model, the recording settings, the group.
  json recording = {{"version", NT_VERSION}, {"model", identity.fingerprint},
                    {"generation", cfg.raw.contains("generation") ? json::parse(cfg.raw["generation"].dump()) : json()},
                    {"trace", cfg.raw.contains("trace") ? json::parse(cfg.raw["trace"].dump()) : json()}};
  auto group_key = [&](size_t g) {
    json k = recording;
    k["group"] = groups.names[g];
    k["index"] = g;
    std::vector<std::string> texts;
    for (int s : groups.seqs[g]) texts.push_back(groups.texts[static_cast<size_t>(s)]);
    k["prompts"] = texts;
    k["first_seq"] = groups.seqs[g].front();
    return hex64(fnv1a(k.dump()));
  };
  const std::string groups_dir = opt.out_dir + "/groups";
  make_directories(groups_dir);
  auto checkpoint_path = [&](size_t g) { return groups_dir + "/" + std::to_string(g) + "-" + slug(groups.names[g]) + ".safetensors"; };

  StudyOutcome outcome;
  std::vector<GenerationResult> generations(groups.texts.size());
  GenerationConfig gen = cfg.gen;
  gen.feed_last_token = true;
  gen.skip.assign(groups.texts.size(), 0);
  std::vector<int> remaining(groups.names.size(), 0);
  for (size_t g = 0; g < groups.names.size(); ++g) {
    auto cp = load_group_checkpoint(checkpoint_path(g), group_key(g), rec, static_cast<int>(g), groups.seqs[g]);
    if (cp) {
      ++outcome.groups_restored;
      for (size_t i = 0; i < cp->seqs.size(); ++i) {
        generations[static_cast<size_t>(cp->seqs[i])] = cp->generations[i];
        gen.skip[static_cast<size_t>(cp->seqs[i])] = 1;
      }
    } else {
      ++outcome.groups_generated;
      remaining[g] = static_cast<int>(groups.seqs[g].size());
    }
  }
  if (opt.log && outcome.groups_restored > 0)
    *opt.log << "neurontrace: resuming " << opt.out_dir << ": " << outcome.groups_restored << " of "
             << groups.names.size() << " prompt groups already done\n";

  if (outcome.groups_generated > 0) {
    Hooks hooks(mc);
    rec.attach(hooks);
    Generator generator(*session.model, &hooks);
    if (opt.progress) generator.on_progress(opt.progress);
    generator.on_sequence_done([&](int seq, const GenerationResult& r) {
      rec.sequence_done(seq);
      generations[static_cast<size_t>(seq)] = r;
      const int g = groups.group_of_seq[static_cast<size_t>(seq)];
      if (--remaining[static_cast<size_t>(g)] == 0) {
        std::vector<GenerationResult> gg;
        for (int s : groups.seqs[static_cast<size_t>(g)]) gg.push_back(generations[static_cast<size_t>(s)]);
        save_group_checkpoint(checkpoint_path(static_cast<size_t>(g)), group_key(static_cast<size_t>(g)), rec, g,
                              groups.seqs[static_cast<size_t>(g)], gg);
      }
    });
    generator.generate(prompt_ids, gen);
  }

  // Analysis: per position setting, the baseline and every concept.
  const int baseline_group = 0;
  std::vector<std::vector<ConceptAnalysis>> analyses(cfg.positions.size());
  std::vector<ConceptAnalysis> all_analyses;
  std::vector<std::string> warnings;
  for (size_t s = 0; s < cfg.positions.size(); ++s) {
    BaselineStats base = compute_baseline(rec, s, baseline_group, groups.seqs[0], cfg.analysis.rank_by);
    if (cfg.analysis.normalization != Normalization::None && base.n_samples == 0)
      throw Error("the baseline prompts recorded no tokens at positions '" + positions_name(cfg.positions[s]) + "'");
    for (size_t g = 1; g < groups.names.size(); ++g) {
      analyses[s].push_back(analyze_concept(rec, s, groups.names[g], groups.seqs[g], base, cfg.analysis));
      for (const auto& w : analyses[s].back().warnings) warnings.push_back(positions_name(cfg.positions[s]) + ": " + w);
      all_analyses.push_back(analyses[s].back());
      if (opt.tables) *opt.tables << consistency_text(analyses[s].back()) << "\n";
    }
  }
  if (opt.log)
    for (const auto& w : warnings) *opt.log << "neurontrace: warning: " << w << "\n";

  // Overlap between concepts, per setting and site.
  StudyReport report;
  json overlaps = json::array();
  for (size_t site = 0; site < cfg.sites.size(); ++site) {
    for (size_t s = 0; s < cfg.positions.size(); ++s) {
      OverlapMatrix m = overlap(analyses[s], site, cfg.overlap_top_n);
      const std::string stem = opt.out_dir + "/overlap_" + positions_name(cfg.positions[s]) + "_" + slug(site_name(cfg.sites[site]));
      Heatmap h;
      h.title = fmt::format("Shared top-{} neurons, {} ({})", cfg.overlap_top_n, setting_title(cfg.positions[s]),
                            site_name(cfg.sites[site]));
      h.labels = m.concepts;
      h.values = m.shared;
      h.value_format = "%.0f";
      h.vmin = 0;
      h.vmax = cfg.overlap_top_n;
      h.scale_label = "shared neurons";
      const std::string png = heatmap_png_bytes(h);
      write_out(stem + ".png", png);
      write_out(stem + ".csv", heatmap_csv(h));
      Heatmap jac = h;
      jac.values = m.jaccard;
      jac.value_format = "%.2f";
      jac.vmax = 1.0;
      write_out(stem + "_jaccard.csv", heatmap_csv(jac));
      report.overlap_heatmaps.push_back({fmt::format("{} — {}", setting_title(cfg.positions[s]), site_name(cfg.sites[site])),
                                         png, heatmap_csv(h)});
      overlaps.push_back({{"positions", positions_name(cfg.positions[s])}, {"site", site_name(cfg.sites[site])},
                          {"top_n", cfg.overlap_top_n}, {"concepts", m.concepts}, {"shared", m.shared},
                          {"jaccard", m.jaccard}});
    }
  }

  // Neuron pages: the top neurons of each concept (main setting), their activations on every text.
  const size_t ms = main_setting(cfg);
  std::vector<std::vector<int>> full_seqs;
  for (size_t i = 0; i < groups.texts.size(); ++i) {
    std::vector<int> t = generations[i].prompt_ids;
    t.insert(t.end(), generations[i].generated_ids.begin(), generations[i].generated_ids.end());
    full_seqs.push_back(std::move(t));
  }
  std::vector<CaptureNeuron> capture;
  struct PageRef {
    size_t concept_index, site;
    ConsistencyRow row;
  };
  std::vector<PageRef> refs;
  for (size_t c = 0; c < analyses[ms].size(); ++c)
    for (size_t site = 0; site < cfg.sites.size(); ++site) {
      const auto& rows = analyses[ms][c].sites[site].rows;
      for (size_t r = 0; r < rows.size() && static_cast<int>(r) < cfg.pages_per_concept; ++r) {
        refs.push_back({c, site, rows[r]});
        capture.push_back({cfg.sites[site], rows[r].neuron.layer, rows[r].neuron.index});
      }
    }
  // Each page shows the texts where its neuron's largest activation on a generated token is
  // highest. The recorder's per-sample maxima over generated tokens give that ranking without
  // running the model again, so only the texts some page shows are captured. Without a
  // generated-token setting, or with a token selection (the recorder then saw only some tokens),
  // every text is captured and ranked from the capture.
  const bool rank_from_recorder = cfg.positions[ms] == Positions::Generated && !selector;
  std::vector<std::vector<size_t>> shown(refs.size());  // [page] texts, best first
  std::vector<char> needed(full_seqs.size(), rank_from_recorder ? 0 : 1);
  if (rank_from_recorder)
    for (size_t k = 0; k < refs.size(); ++k) {
      const size_t flat = rec.layout().flat({static_cast<int>(refs[k].site), capture[k].layer, capture[k].index});
      std::vector<std::pair<float, size_t>> best;
      for (size_t i = 0; i < full_seqs.size(); ++i)
        if (rec.n_tokens(ms, static_cast<int>(i)) > 0)
          best.emplace_back(rec.sample_value(ms, static_cast<int>(i), SampleStat::Max, flat), i);
      std::stable_sort(best.begin(), best.end(), [](auto& a, auto& b) { return a.first > b.first; });
      for (size_t b = 0; b < best.size() && static_cast<int>(b) < cfg.records_per_page; ++b) {
        shown[k].push_back(best[b].second);
        needed[best[b].second] = 1;
      }
    }
  std::vector<std::vector<int>> to_capture;
  std::vector<int> captured_as(full_seqs.size(), -1);  // text -> index in to_capture
  for (size_t i = 0; i < full_seqs.size(); ++i)
    if (needed[i]) {
      captured_as[i] = static_cast<int>(to_capture.size());
      to_capture.push_back(full_seqs[i]);
    }
  const auto acts = capture.empty() ? std::vector<std::vector<std::vector<float>>>{}
                                    : capture_neurons(*session.model, to_capture, capture);
  json neuron_files = json::array();
  for (size_t k = 0; k < refs.size(); ++k) {
    const PageRef& ref = refs[k];
    const auto& sc = analyses[ms][ref.concept_index].sites[ref.site];
    NeuronPage page;
    page.concept_name = analyses[ms][ref.concept_index].concept_name;
    page.site = site_name(cfg.sites[ref.site]);
    page.positions = positions_name(cfg.positions[ms]);
    page.layer = ref.row.neuron.layer;
    page.neuron = ref.row.neuron.index;
    page.occurrences = ref.row.occurrences;
    page.max_occurrences = sc.max_occurrences;
    page.concept_mean = ref.row.concept_mean;
    page.baseline_mean = ref.row.baseline_mean;
    page.cohens_d = ref.row.cohens_d;
    // The text's largest activation of the neuron on a generated token, from the capture.
    auto max_generated = [&](size_t i) {
      const auto& a = acts[static_cast<size_t>(captured_as[i])];
      float mx = -INFINITY;
      for (size_t t = generations[i].prompt_ids.size(); t < full_seqs[i].size(); ++t) mx = std::max(mx, a[t][k]);
      return mx;
    };
    if (!rank_from_recorder) {
      std::vector<std::pair<float, size_t>> best;
      for (size_t i = 0; i < full_seqs.size(); ++i)
        if (full_seqs[i].size() > generations[i].prompt_ids.size()) best.emplace_back(max_generated(i), i);
      std::stable_sort(best.begin(), best.end(), [](auto& a, auto& b) { return a.first > b.first; });
      for (size_t b = 0; b < best.size() && static_cast<int>(b) < cfg.records_per_page; ++b)
        shown[k].push_back(best[b].second);
    }
    for (size_t i : shown[k]) {
      const auto& a = acts[static_cast<size_t>(captured_as[i])];
      ActivationRecord rec_;
      rec_.prompt_index = static_cast<int>(i);
      rec_.prompt_group = groups.names[static_cast<size_t>(groups.group_of_seq[i])];
      rec_.max_activation = max_generated(i);
      for (size_t t = 0; t < full_seqs[i].size(); ++t)
        rec_.tokens.push_back({session.tokenizer->token_bytes(full_seqs[i][t]), a[t][k]});
      page.top_records.push_back(std::move(rec_));
    }
    const std::string file = "neurons/" + slug(page.concept_name) + "_" + slug(page.site) + "_L" +
                             std::to_string(page.layer) + "N" + std::to_string(page.neuron) + ".json";
    write_out(opt.out_dir + "/" + file, neuron_record_json(page).dump(1) + "\n");
    neuron_files.push_back(file);
    report.neuron_pages.push_back(std::move(page));
  }

  // Steering.
  json steering = nullptr;
  if (cfg.steer) {
    const StudySteer& st = *cfg.steer;
    const size_t s = st.positions.empty() ? ms : setting_index(cfg, st.positions);
    size_t site = 0;
    if (st.site) {  // one of the traced sites (load_study_config)
      site = static_cast<size_t>(std::find(cfg.sites.begin(), cfg.sites.end(), *st.site) - cfg.sites.begin());
    }
    const ConceptAnalysis* ca = nullptr;
    for (const auto& a : analyses[s])
      if (a.concept_name == st.concept_name) ca = &a;
    const auto& rows = ca->sites[site].rows;
    if (static_cast<int>(rows.size()) < st.top_n)
      throw Error(cfg.path + ": steer.top_n " + std::to_string(st.top_n) + " but concept '" + st.concept_name +
                  "' has only " + std::to_string(rows.size()) + " ranked neurons");
    SteeringOptions so;
    so.intervention.site = cfg.sites[site];
    for (int i = 0; i < st.top_n; ++i) so.intervention.neurons.push_back({rows[static_cast<size_t>(i)].neuron.layer, rows[static_cast<size_t>(i)].neuron.index});
    parse_mode(st.mode, so.intervention);
    so.intervention.where = parse_where(st.where);
    const int width = site_width(cfg.sites[site], mc);
    const TokenStats& base_tokens = rec.group(s, baseline_group);
    const size_t offset = rec.layout().offsets[site];
    for (size_t i = 0; i < static_cast<size_t>(mc.n_layer) * width; ++i)
      so.site_means.push_back(static_cast<float>(base_tokens.mean(offset + i)));
    if (so.intervention.mode == InterventionMode::Mean)
      for (const auto& n : so.intervention.neurons)
        so.intervention.means.push_back(so.site_means[static_cast<size_t>(n.layer) * width + n.index]);
    so.concept_words = st.concept_words.empty() ? std::vector<std::string>{st.concept_name} : st.concept_words;
    so.controls = st.controls;
    so.control_seed = st.control_seed;
    so.gen = cfg.gen;
    if (st.max_new_tokens > 0) so.gen.max_new_tokens = st.max_new_tokens;
    SteeringResult sr = run_steering(session, st.prompts, so);
    steering = steering_json(sr);
    steering["concept"] = st.concept_name;
    steering["positions"] = positions_name(cfg.positions[s]);
    steering["concept_words"] = so.concept_words;
    write_out(opt.out_dir + "/steering.json", steering.dump(1, ' ', false, json::error_handler_t::replace) + "\n");
    std::string control;
    for (const auto& cs : sr.summary)
      control += fmt::format("{}: effect {:.4f}, controls median {:.4f} (5–95%: {:.4f}..{:.4f}), effect at the {:.0f}th percentile. ",
                             cs.measure, cs.effect, cs.median, cs.p5, cs.p95, cs.percentile);
    for (const auto& p : sr.prompts) {
      SteeringView v;
      v.title = fmt::format("{}: top-{} neurons, {}", st.concept_name, st.top_n, st.mode);
      v.prompt = p.prompt;
      for (int id : p.unsteered_ids) v.unsteered_tokens.push_back(session.tokenizer->token_bytes(id));
      for (int id : p.steered_ids) v.steered_tokens.push_back(session.tokenizer->token_bytes(id));
      v.first_divergence_token = p.first_divergence;
      v.spec = sr.intervention.describe();
      v.measures = {{"KL(unsteered ‖ steered), mean per token", fmt::format("{:.4f}", p.steered.kl)},
                    {"concept-word hit rate, unsteered → steered",
                     fmt::format("{:.3f} → {:.3f}", p.unsteered.hit_rate, p.steered.hit_rate)},
                    {"concept log-prob, unsteered → steered",
                     fmt::format("{:.3f} → {:.3f}", p.unsteered.concept_logprob, p.steered.concept_logprob)}};
      v.control_summary = fmt::format("Against {} random sets of {} neurons from the same site and layers: {}",
                                      st.controls, st.top_n, control);
      report.steering.push_back(std::move(v));
    }
    report.steering_note =
        "KL: how far the steered model's next-token distribution moves from the unsteered one, teacher-forced on the "
        "unsteered text. The percentile places the traced neurons among random neurons: near 100% for KL means the "
        "traced neurons matter more than random ones.";
  }

  // study.json, tables, report.
  json prompts = json::array();
  for (size_t i = 0; i < groups.texts.size(); ++i)
    prompts.push_back({{"index", i}, {"group", groups.names[static_cast<size_t>(groups.group_of_seq[i])]},
                       {"text", groups.texts[i]}, {"prompt_ids", generations[i].prompt_ids},
                       {"generated_ids", generations[i].generated_ids},
                       {"generated_text", decode_continuation(*session.tokenizer, generations[i].prompt_ids,
                                                             generations[i].generated_ids)},
                       {"stop_reason", generations[i].stop_reason}});
  json results = json::array();
  for (const auto& a : all_analyses) results.push_back(analysis_json(a));
  json study = {{"neurontrace_version", NT_VERSION}, {"kind", "study"}, {"model", identity.to_json()},
                {"config", json::parse(cfg.raw.dump())}, {"prompts", prompts}, {"results", results},
                {"overlap", overlaps}, {"neuron_records", neuron_files}, {"steering", steering},
                {"warnings", warnings}};
  write_out(opt.out_dir + "/study.json", study.dump(1, ' ', false, json::error_handler_t::replace) + "\n");
  write_out(opt.out_dir + "/consistency.md", consistency_markdown(all_analyses));
  write_out(opt.out_dir + "/consistency.csv", consistency_csv(all_analyses));

  report.title = "neurontrace study: " + fs::path(cfg.path).filename().string();
  report.description = cfg.description;
  report.config_json = cfg.raw.dump(2);
  report.model_description = identity.describe();
  report.facts = {{"prompts", fmt::format("{} concepts × their prompts, {} baseline prompts", cfg.concepts.size(), cfg.baseline.size())},
                  {"generation", fmt::format("{} new tokens, temperature {}, seed {}", cfg.gen.max_new_tokens,
                                             cfg.gen.sampling.temperature, cfg.gen.sampling.seed)},
                  {"normalization", normalization_name(cfg.analysis.normalization) + ", ranked by " +
                                        rank_by_name(cfg.analysis.rank_by) + ", top " + std::to_string(cfg.analysis.top_k) +
                                        " per sample"},
                  {"token selection", selector ? selector->describe() : "every token"}};
  for (size_t s = 0; s < cfg.positions.size(); ++s)
    report.sections.push_back({setting_title(cfg.positions[s]), "", analyses[s]});
  report.overlap_note = fmt::format(
      "Number of neurons shared by the top {} consistent neurons of two concepts (diagonal: the concept's own "
      "count). Lower off-diagonal values mean more concept-specific neurons.",
      cfg.overlap_top_n);
  for (size_t g = 1; g < groups.names.size(); ++g) {
    ConceptTexts ct;
    ct.concept_name = groups.names[g];
    for (int sq : groups.seqs[g])
      ct.texts.push_back({sq, groups.texts[static_cast<size_t>(sq)],
                          decode_continuation(*session.tokenizer, generations[static_cast<size_t>(sq)].prompt_ids,
                                              generations[static_cast<size_t>(sq)].generated_ids),
                          fmt::format("{} tokens, stop: {}", generations[static_cast<size_t>(sq)].generated_ids.size(),
                                      generations[static_cast<size_t>(sq)].stop_reason)});
    report.generated.push_back(std::move(ct));
  }
  {
    ConceptTexts ct;
    ct.concept_name = "baseline";
    for (int sq : groups.seqs[0])
      ct.texts.push_back({sq, groups.texts[static_cast<size_t>(sq)],
                          decode_continuation(*session.tokenizer, generations[static_cast<size_t>(sq)].prompt_ids,
                                              generations[static_cast<size_t>(sq)].generated_ids), ""});
    report.generated.push_back(std::move(ct));
  }
  report.warnings = warnings;
  report.footer = std::string("neurontrace ") + NT_VERSION;
  outcome.report_path = opt.out_dir + "/report.html";
  write_study_report(outcome.report_path, report);
  return outcome;
}

}  // namespace nt
