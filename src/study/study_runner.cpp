#include "study/study_runner.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fmt/format.h>
#include <memory>
#include <ostream>

#include "analysis/atlas_baseline.h"
#include "analysis/atlas_share.h"
#include "analysis/consistency.h"
#include "analysis/overlap.h"
#include "io/model_identity.h"
#include "model/weight_matrix.h"
#include "report/consistency_table.h"
#include "report/heatmap.h"
#include "report/html_report.h"
#include "report/neuron_page.h"
#include "report/sae_fit_report.h"
#include "report/trace_json.h"
#include "runtime/session.h"
#include "steer/steering.h"
#include "steer/steering_json.h"
#include "study/checkpoint.h"
#include "study/study_config.h"
#include "study/study_part.h"
#include "trace/neuron_capture.h"
#include "trace/recorder.h"
#include "sae/sae.h"
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

// ---- Generate: every text once, recorded at every position setting, checkpointed per group.

// Where each prompt group's checkpoint lives, and the key it must carry to be reused: the model,
// the recording settings and the group's prompts.
struct Checkpoints {
  std::string dir;
  json recording;
  const Groups& groups;

  std::string path(size_t g) const { return dir + "/" + std::to_string(g) + "-" + slug(groups.names[g]) + ".safetensors"; }
  std::string key(size_t g) const {
    json k = recording;
    k["group"] = groups.names[g];
    k["index"] = g;
    std::vector<std::string> texts;
    for (int s : groups.seqs[g]) texts.push_back(groups.texts[static_cast<size_t>(s)]);
    k["prompts"] = texts;
    k["first_seq"] = groups.seqs[g].front();
    return hex64(fnv1a(k.dump()));
  }
};

Checkpoints study_checkpoints(const StudyConfig& cfg, const ModelIdentity& identity, const Groups& groups,
                              const std::string& out_dir) {
  auto section = [&](const char* name) { return cfg.raw.contains(name) ? json::parse(cfg.raw[name].dump()) : json(); };
  json recording = {{"version", NT_VERSION}, {"model", identity.fingerprint},
                    {"generation", section("generation")}, {"trace", section("trace")}, {"saes", section("saes")},
                    {"statistics", "with density"}};
  Checkpoints cps{out_dir + "/groups", std::move(recording), groups};
  make_directories(cps.dir);
  return cps;
}

std::unique_ptr<Recorder> study_recorder(const StudyConfig& cfg, const Session& session, const Groups& groups,
                                         const TokenSelector* selector) {
  RecorderOptions ro;
  ro.sites = cfg.sites;
  ro.settings = cfg.positions;
  ro.skip_first = cfg.skip_first;
  ro.selector = selector;
  return std::make_unique<Recorder>(session.model->config(), *session.tokenizer, ro, groups.group_of_seq,
                                    static_cast<int>(groups.names.size()));
}

// The prompt groups this run generates or restores: all, or a shard's.
std::vector<char> wanted_groups(const Groups& groups, const Shard& shard) {
  std::vector<size_t> prompts;
  for (const auto& seqs : groups.seqs) prompts.push_back(seqs.size());
  std::vector<char> wanted(groups.names.size(), 0);
  for (int g : shard_groups(prompts, shard)) wanted[static_cast<size_t>(g)] = 1;
  return wanted;
}

// Restores the wanted groups whose checkpoint is valid into `rec` and `generations`, marks their
// sequences (and those of the groups not wanted) in `skip`, and returns per group the number of
// sequences still to generate. With restore_only, a wanted group without a valid checkpoint is an error.
std::vector<int> restore_groups(const Checkpoints& cps, const Groups& groups, const std::vector<char>& wanted,
                                bool restore_only, Recorder& rec, std::vector<GenerationResult>& generations,
                                std::vector<char>& skip, StudyOutcome& outcome) {
  std::vector<int> remaining(groups.names.size(), 0);
  for (size_t g = 0; g < groups.names.size(); ++g) {
    if (groups.seqs[g].empty()) continue;  // no baseline prompts (an atlas baseline): nothing to keep
    if (!wanted[g]) {
      for (int s : groups.seqs[g]) skip[static_cast<size_t>(s)] = 1;
      continue;
    }
    auto cp = load_group_checkpoint(cps.path(g), cps.key(g), rec, static_cast<int>(g), groups.seqs[g]);
    if (!cp && restore_only) throw Error(cps.path(g) + ": checkpoint missing or made with other settings");
    if (!cp) {
      ++outcome.groups_generated;
      remaining[g] = static_cast<int>(groups.seqs[g].size());
      continue;
    }
    ++outcome.groups_restored;
    for (size_t i = 0; i < cp->seqs.size(); ++i) {
      generations[static_cast<size_t>(cp->seqs[i])] = cp->generations[i];
      skip[static_cast<size_t>(cp->seqs[i])] = 1;
    }
  }
  return remaining;
}

// Generates the sequences not skipped, recording them, and checkpoints each group as it finishes.
void generate_remaining(Session& session, const Groups& groups, const Checkpoints& cps, Recorder& rec,
                        const GenerationConfig& gen, std::vector<int> remaining,
                        std::vector<GenerationResult>& generations,
                        const std::function<void(const GenerationProgress&)>& progress) {
  Hooks hooks(session.model->config());
  rec.attach(hooks);
  Generator generator(*session.model, &hooks);
  if (progress) generator.on_progress(progress);
  generator.on_sequence_done([&](int seq, const GenerationResult& r) {
    rec.sequence_done(seq);
    generations[static_cast<size_t>(seq)] = r;
    const size_t g = static_cast<size_t>(groups.group_of_seq[static_cast<size_t>(seq)]);
    if (--remaining[g] > 0) return;
    std::vector<GenerationResult> done;
    for (int s : groups.seqs[g]) done.push_back(generations[static_cast<size_t>(s)]);
    save_group_checkpoint(cps.path(g), cps.key(g), rec, static_cast<int>(g), groups.seqs[g], done);
  });
  generator.generate(session.encode_prompts(groups.texts), gen);
}

// Every text's generation (restored or new); `rec` holds their recorded statistics afterwards.
std::vector<GenerationResult> generate_and_record(const StudyConfig& cfg, Session& session, const Groups& groups,
                                                  const Checkpoints& cps, Recorder& rec, const StudyOptions& opt,
                                                  StudyOutcome& outcome) {
  std::vector<GenerationResult> generations(groups.texts.size());
  GenerationConfig gen = cfg.gen;
  gen.feed_last_token = true;
  gen.skip.assign(groups.texts.size(), 0);
  const std::vector<char> wanted = wanted_groups(groups, opt.shard.value_or(Shard{}));
  std::vector<int> remaining =
      restore_groups(cps, groups, wanted, opt.restore_only, rec, generations, gen.skip, outcome);
  if (opt.log && outcome.groups_restored > 0 && !opt.restore_only)
    *opt.log << "neurontrace: resuming " << opt.out_dir << ": " << outcome.groups_restored << " of "
             << std::count(wanted.begin(), wanted.end(), 1) << " prompt groups already done\n";
  if (outcome.groups_generated > 0)
    generate_remaining(session, groups, cps, rec, gen, std::move(remaining), generations, opt.progress);
  return generations;
}

// ---- Analyse: per position setting, the baseline and every concept.

constexpr int kBaselineGroup = 0;

struct StudyAnalyses {
  std::vector<std::vector<ConceptAnalysis>> per_setting;  // [setting][concept]
  std::vector<ConceptAnalysis> all;                       // setting by setting, the tables' order
  std::vector<std::string> warnings;                      // "<positions>: <warning>"
};

// The atlases of "baseline": {"atlas"} and "atlas", read and checked before anything is generated.
struct StudyAtlases {
  std::optional<BaselineStats> baseline;  // replaces the baseline prompts' figures in the tables
  std::vector<AtlasShares> shares;        // per concept; empty without "atlas"
};

StudyAtlases study_atlases(const StudyConfig& cfg, const Session& session) {
  const NeuronLayout layout(cfg.sites, session.model->config());
  StudyAtlases a;
  if (!cfg.baseline_atlas.empty()) a.baseline = atlas_baseline(cfg.baseline_atlas, session, layout);
  if (cfg.atlas.empty()) return a;
  const ModelAtlas atlas = load_model_atlas(cfg.atlas, session, layout);
  for (const auto& words : cfg.concept_words) a.shares.push_back(atlas_shares(atlas, words, *session.tokenizer));
  return a;
}

// Prints each concept's tables to `tables` (when not null) as they are made.
StudyAnalyses analyse(const StudyConfig& cfg, const Recorder& rec, const Groups& groups, const StudyAtlases& atlases,
                      std::ostream* tables) {
  StudyAnalyses an;
  an.per_setting.resize(cfg.positions.size());
  for (size_t s = 0; s < cfg.positions.size(); ++s) {
    const BaselineStats base = atlases.baseline ? *atlases.baseline
                                                : compute_baseline(rec, s, kBaselineGroup, groups.seqs[kBaselineGroup],
                                                                   cfg.analysis.rank_by);
    for (size_t g = 1; g < groups.names.size(); ++g) {
      ConceptAnalysis a = analyze_concept(rec, s, groups.names[g], groups.seqs[g], base, cfg.analysis);
      if (!atlases.shares.empty()) add_atlas_shares(a, atlases.shares[g - 1], rec.layout());
      for (const auto& w : a.warnings) an.warnings.push_back(positions_name(cfg.positions[s]) + ": " + w);
      if (tables) *tables << consistency_text(a) << "\n";
      an.all.push_back(a);
      an.per_setting[s].push_back(std::move(a));
    }
  }
  return an;
}

// ---- Overlap: shared top neurons of every two concepts, per site and setting.

struct StudyOverlaps {
  json tables = json::array();          // study.json's "overlap"
  std::vector<HeatmapView> heatmaps;    // the report's
};

// Writes overlap_<positions>_<site>.png/.csv and _jaccard.csv for one setting and site; returns
// the report's view of it.
HeatmapView write_overlap(const StudyConfig& cfg, const OverlapMatrix& m, size_t s, size_t site,
                          const std::string& out_dir) {
  const std::string stem = out_dir + "/overlap_" + positions_name(cfg.positions[s]) + "_" + slug(cfg.sites[site].name());
  Heatmap h;
  h.title = fmt::format("Shared top-{} neurons, {} ({})", cfg.overlap_top_n, setting_title(cfg.positions[s]),
                        cfg.sites[site].name());
  h.labels = m.concepts;
  h.values = m.shared;
  h.value_format = "%.0f";
  h.vmin = 0;
  h.vmax = cfg.overlap_top_n;
  h.scale_label = "shared neurons";
  HeatmapView view{fmt::format("{} — {}", setting_title(cfg.positions[s]), cfg.sites[site].name()),
                   heatmap_png_bytes(h), heatmap_csv(h)};
  write_out(stem + ".png", view.png);
  write_out(stem + ".csv", view.csv);
  Heatmap jaccard = h;
  jaccard.values = m.jaccard;
  jaccard.value_format = "%.2f";
  jaccard.vmax = 1.0;
  write_out(stem + "_jaccard.csv", heatmap_csv(jaccard));
  return view;
}

StudyOverlaps overlaps(const StudyConfig& cfg, const StudyAnalyses& an, const std::string& out_dir) {
  StudyOverlaps out;
  for (size_t site = 0; site < cfg.sites.size(); ++site)
    for (size_t s = 0; s < cfg.positions.size(); ++s) {
      const OverlapMatrix m = overlap(an.per_setting[s], site, cfg.overlap_top_n);
      out.heatmaps.push_back(write_overlap(cfg, m, s, site, out_dir));
      out.tables.push_back({{"positions", positions_name(cfg.positions[s])}, {"site", cfg.sites[site].name()},
                            {"top_n", cfg.overlap_top_n}, {"concepts", m.concepts}, {"shared", m.shared},
                            {"jaccard", m.jaccard}});
    }
  return out;
}

// ---- Neuron pages: the top neurons of each concept (main setting), their activations on texts.

// One page's neuron: a row of a concept's table at one site.
struct PageRef {
  size_t concept_index, site;
  ConsistencyRow row;
};

std::vector<PageRef> page_refs(const StudyConfig& cfg, const std::vector<ConceptAnalysis>& analyses) {
  std::vector<PageRef> refs;
  for (size_t c = 0; c < analyses.size(); ++c)
    for (size_t site = 0; site < cfg.sites.size(); ++site) {
      const auto& rows = analyses[c].sites[site].rows;
      for (size_t r = 0; r < rows.size() && static_cast<int>(r) < cfg.pages_per_concept; ++r)
        refs.push_back({c, site, rows[r]});
    }
  return refs;
}

// The texts of the `n` largest values, largest first, ties in the order given.
std::vector<size_t> best_texts(std::vector<std::pair<float, size_t>> value_and_text, int n) {
  std::stable_sort(value_and_text.begin(), value_and_text.end(), [](auto& a, auto& b) { return a.first > b.first; });
  std::vector<size_t> best;
  for (size_t b = 0; b < value_and_text.size() && static_cast<int>(b) < n; ++b) best.push_back(value_and_text[b].second);
  return best;
}

// Each text's tokens, prompt then generation, and which of them the pages need.
struct PageTexts {
  std::vector<std::vector<int>> tokens;               // per text
  std::vector<std::vector<size_t>> shown;             // per page: its texts, best first
  std::vector<int> captured_as;                       // per text: index into acts, -1 when not captured
  std::vector<std::vector<std::vector<float>>> acts;  // [captured text][token][page]
};

// Each page's texts from the recorder's per-sample maxima at setting ms.
void rank_from_recorder(const StudyConfig& cfg, const Recorder& rec, size_t ms, const std::vector<PageRef>& refs,
                        PageTexts& pt) {
  for (size_t k = 0; k < refs.size(); ++k) {
    const size_t flat = rec.layout().flat({static_cast<int>(refs[k].site), refs[k].row.neuron.layer, refs[k].row.neuron.index});
    std::vector<std::pair<float, size_t>> maxima;
    for (size_t i = 0; i < pt.tokens.size(); ++i)
      if (rec.n_tokens(ms, static_cast<int>(i)) > 0)
        maxima.emplace_back(rec.sample_value(ms, static_cast<int>(i), SampleStat::Max, flat), i);
    pt.shown[k] = best_texts(std::move(maxima), cfg.records_per_page);
  }
}

// Each page shows the texts where its neuron's largest activation on a generated token is
// highest. The recorder's per-sample maxima over generated tokens give that ranking without
// running the model again (`ranked`), so only the texts some page shows are captured. Without a
// generated-token setting, or with a token selection (the recorder then saw only some tokens),
// every text is captured, to be ranked from the capture (rank_from_capture).
PageTexts capture_page_texts(const StudyConfig& cfg, Session& session, const Recorder& rec, size_t ms,
                             const std::vector<GenerationResult>& generations, const std::vector<PageRef>& refs,
                             bool ranked) {
  PageTexts pt;
  for (const auto& g : generations) {
    std::vector<int> t = g.prompt_ids;
    t.insert(t.end(), g.generated_ids.begin(), g.generated_ids.end());
    pt.tokens.push_back(std::move(t));
  }
  pt.shown.resize(refs.size());
  std::vector<char> needed(pt.tokens.size(), ranked ? 0 : 1);
  if (ranked) {
    rank_from_recorder(cfg, rec, ms, refs, pt);
    for (const auto& texts : pt.shown)
      for (size_t i : texts) needed[i] = 1;
  }
  std::vector<std::vector<int>> to_capture;
  pt.captured_as.assign(pt.tokens.size(), -1);
  for (size_t i = 0; i < pt.tokens.size(); ++i)
    if (needed[i]) {
      pt.captured_as[i] = static_cast<int>(to_capture.size());
      to_capture.push_back(pt.tokens[i]);
    }
  std::vector<CaptureNeuron> capture;
  for (const auto& r : refs) capture.push_back({cfg.sites[r.site], r.row.neuron.layer, r.row.neuron.index});
  if (!capture.empty()) pt.acts = capture_neurons(*session.model, to_capture, capture);
  return pt;
}

// The largest activation of page k's neuron on a generated token of text i, from the capture.
float max_generated(const PageTexts& pt, const std::vector<GenerationResult>& generations, size_t k, size_t i) {
  const auto& a = pt.acts[static_cast<size_t>(pt.captured_as[i])];
  float mx = -INFINITY;
  for (size_t t = generations[i].prompt_ids.size(); t < pt.tokens[i].size(); ++t) mx = std::max(mx, a[t][k]);
  return mx;
}

// Without the recorder's ranking: the texts with generated tokens, by their captured maxima.
void rank_from_capture(const StudyConfig& cfg, PageTexts& pt, const std::vector<GenerationResult>& generations) {
  for (size_t k = 0; k < pt.shown.size(); ++k) {
    std::vector<std::pair<float, size_t>> maxima;
    for (size_t i = 0; i < pt.tokens.size(); ++i)
      if (pt.tokens[i].size() > generations[i].prompt_ids.size()) maxima.emplace_back(max_generated(pt, generations, k, i), i);
    pt.shown[k] = best_texts(std::move(maxima), cfg.records_per_page);
  }
}

NeuronPage neuron_page(const StudyConfig& cfg, const Session& session, const Groups& groups,
                       const std::vector<GenerationResult>& generations, const ConceptAnalysis& analysis,
                       const PageTexts& pt, const PageRef& ref, size_t k, size_t ms) {
  NeuronPage page;
  page.concept_name = analysis.concept_name;
  page.site = cfg.sites[ref.site].name();
  if (cfg.sites[ref.site].is_features()) page.label = unit_label(cfg.sites[ref.site], ref.row.neuron.layer, ref.row.neuron.index);
  page.positions = positions_name(cfg.positions[ms]);
  page.layer = ref.row.neuron.layer;
  page.neuron = ref.row.neuron.index;
  page.occurrences = ref.row.occurrences;
  page.max_occurrences = analysis.sites[ref.site].max_occurrences;
  page.concept_mean = ref.row.concept_mean;
  page.baseline_mean = ref.row.baseline_mean;
  page.cohens_d = ref.row.cohens_d;
  page.density = ref.row.density;
  for (size_t i : pt.shown[k]) {
    const auto& a = pt.acts[static_cast<size_t>(pt.captured_as[i])];
    ActivationRecord record;
    record.prompt_index = static_cast<int>(i);
    record.prompt_group = groups.names[static_cast<size_t>(groups.group_of_seq[i])];
    record.max_activation = max_generated(pt, generations, k, i);
    for (size_t t = 0; t < pt.tokens[i].size(); ++t)
      record.tokens.push_back({session.tokenizer->token_bytes(pt.tokens[i][t]), a[t][k]});
    page.top_records.push_back(std::move(record));
  }
  return page;
}

struct StudyPages {
  std::vector<NeuronPage> pages;
  json files = json::array();  // study.json's "neuron_records": paths under the output folder
};

// Writes neurons/<concept>_<site>_L<l>N<n>.json for each page.
StudyPages neuron_pages(const StudyConfig& cfg, Session& session, const Groups& groups, const Recorder& rec,
                        const std::vector<GenerationResult>& generations, const StudyAnalyses& an,
                        bool token_selection, const std::string& out_dir) {
  const size_t ms = main_setting(cfg);
  const std::vector<PageRef> refs = page_refs(cfg, an.per_setting[ms]);
  const bool ranked = cfg.positions[ms] == Positions::Generated && !token_selection;
  PageTexts pt = capture_page_texts(cfg, session, rec, ms, generations, refs, ranked);
  if (!ranked) rank_from_capture(cfg, pt, generations);
  StudyPages out;
  for (size_t k = 0; k < refs.size(); ++k) {
    NeuronPage page = neuron_page(cfg, session, groups, generations, an.per_setting[ms][refs[k].concept_index], pt,
                                  refs[k], k, ms);
    const std::string file = "neurons/" + slug(page.concept_name) + "_" + slug(page.site) + "_" +
                             (page.label.empty() ? neuron_label(page.layer, page.neuron) : page.label) + ".json";
    write_out(out_dir + "/" + file, neuron_record_json(page).dump(1) + "\n");
    out.files.push_back(file);
    out.pages.push_back(std::move(page));
  }
  return out;
}

// ---- Steering: the configured concept's top neurons switched off (or set), against random controls.

// The traced site the steering uses: steer.site, else the first.
size_t steering_site(const StudyConfig& cfg, const StudySteer& st) {
  if (!st.site) return 0;  // else one of the traced sites (load_study_config)
  return static_cast<size_t>(std::find(cfg.sites.begin(), cfg.sites.end(), *st.site) - cfg.sites.begin());
}

// Every traced unit's baseline mean at setting s: the atlas's when the baseline is an atlas, else
// the baseline prompts' token mean.
std::vector<double> baseline_means(const Recorder& rec, const StudyAtlases& atlases, size_t s) {
  if (atlases.baseline) return atlases.baseline->mean;
  const TokenStats& base_tokens = rec.group(s, kBaselineGroup);
  std::vector<double> means(rec.layout().total);
  for (size_t u = 0; u < means.size(); ++u) means[u] = base_tokens.mean(u);
  return means;
}

// The intervention on the concept's top neurons at setting s and the site, with the baseline's
// per-neuron means (for mean ablation and the controls).
SteeringOptions steering_options(const StudyConfig& cfg, const StudySteer& st, const ModelConfig& mc,
                                 const std::vector<double>& means, const NeuronLayout& layout,
                                 const ConceptAnalysis& ca, size_t s, size_t site) {
  const auto& rows = ca.sites[site].rows;
  if (static_cast<int>(rows.size()) < st.top_n)
    throw Error(cfg.path + ": steer.top_n " + std::to_string(st.top_n) + " but concept '" + st.concept_name +
                "' has only " + std::to_string(rows.size()) + " ranked neurons at positions '" +
                positions_name(cfg.positions[s]) + "'" +
                (ca.no_tokens ? " (no tokens recorded there; steer.positions can name another setting)" : ""));
  SteeringOptions so;
  so.intervention.site = cfg.sites[site].hook;  // a hook site: steer.site is one of trace.sites
  for (int i = 0; i < st.top_n; ++i)
    so.intervention.neurons.push_back({rows[static_cast<size_t>(i)].neuron.layer, rows[static_cast<size_t>(i)].neuron.index});
  parse_mode(st.mode, so.intervention);
  so.intervention.where = parse_where(st.where);
  const int width = site_width(cfg.sites[site].hook, mc);
  const size_t offset = layout.offsets[site];
  for (size_t i = 0; i < static_cast<size_t>(mc.n_layer) * width; ++i)
    so.site_means.push_back(static_cast<float>(means[offset + i]));
  if (so.intervention.mode == InterventionMode::Mean)
    for (const auto& n : so.intervention.neurons)
      so.intervention.means.push_back(so.site_means[static_cast<size_t>(n.layer) * width + n.index]);
  so.concept_words = st.concept_words.empty() ? std::vector<std::string>{st.concept_name} : st.concept_words;
  so.controls = st.controls;
  so.control_seed = st.control_seed;
  so.gen = cfg.gen;
  if (st.max_new_tokens > 0) so.gen.max_new_tokens = st.max_new_tokens;
  return so;
}

// The report's side-by-side view of each steered prompt.
std::vector<SteeringView> steering_views(const StudySteer& st, const Tokenizer& tokenizer, const SteeringResult& sr) {
  std::string control;
  for (const auto& cs : sr.summary)
    control += fmt::format("{}: effect {:.4f}, controls median {:.4f} (5–95%: {:.4f}..{:.4f}), effect at the {:.0f}th percentile. ",
                           cs.measure, cs.effect, cs.median, cs.p5, cs.p95, cs.percentile);
  std::vector<SteeringView> views;
  for (const auto& p : sr.prompts) {
    SteeringView v;
    v.title = fmt::format("{}: top-{} neurons, {}", st.concept_name, st.top_n, st.mode);
    v.prompt = p.prompt;
    for (int id : p.unsteered_ids) v.unsteered_tokens.push_back(tokenizer.token_bytes(id));
    for (int id : p.steered_ids) v.steered_tokens.push_back(tokenizer.token_bytes(id));
    v.first_divergence_token = p.first_divergence;
    v.spec = sr.intervention.describe();
    v.measures = {{"KL(unsteered ‖ steered), mean per token", fmt::format("{:.4f}", p.steered.kl)},
                  {"concept-word hit rate, unsteered → steered",
                   fmt::format("{:.3f} → {:.3f}", p.unsteered.hit_rate, p.steered.hit_rate)},
                  {"concept log-prob, unsteered → steered",
                   fmt::format("{:.3f} → {:.3f}", p.unsteered.concept_logprob, p.steered.concept_logprob)}};
    v.control_summary = fmt::format("{}gainst {} random sets of {} neurons from the same site and layers: {}",
                                    sr.prompts.size() > 1 ? fmt::format("Means over the {} steering prompts, a", sr.prompts.size())
                                                          : std::string("A"),
                                    st.controls, st.top_n, control);
    views.push_back(std::move(v));
  }
  return views;
}

struct StudySteering {
  json result = nullptr;  // study.json's "steering" (also steering.json); null when not configured
  std::vector<SteeringView> views;
};

// Writes steering.json.
StudySteering steering(const StudyConfig& cfg, Session& session, const Recorder& rec, const StudyAtlases& atlases,
                       const StudyAnalyses& an, const std::string& out_dir) {
  StudySteering out;
  if (!cfg.steer) return out;
  const StudySteer& st = *cfg.steer;
  const size_t s = st.positions.empty() ? main_setting(cfg) : setting_index(cfg, st.positions);
  const size_t site = steering_site(cfg, st);
  const ConceptAnalysis& ca = *std::find_if(an.per_setting[s].begin(), an.per_setting[s].end(),
                                            [&](const ConceptAnalysis& a) { return a.concept_name == st.concept_name; });
  const SteeringOptions so =
      steering_options(cfg, st, session.model->config(), baseline_means(rec, atlases, s), rec.layout(), ca, s, site);
  const SteeringResult sr = run_steering(session, st.prompts, so);
  out.result = steering_json(sr);
  out.result["concept"] = st.concept_name;
  out.result["positions"] = positions_name(cfg.positions[s]);
  out.result["concept_words"] = so.concept_words;
  write_out(out_dir + "/steering.json", out.result.dump(1, ' ', false, json::error_handler_t::replace) + "\n");
  out.views = steering_views(st, *session.tokenizer, sr);
  return out;
}

// ---- Write: study.json, the tables and the HTML report.

// What the study made, for the final outputs.
struct StudyResults {
  const StudyConfig& cfg;
  const Session& session;
  const ModelIdentity& identity;
  const Groups& groups;
  const std::vector<GenerationResult>& generations;
  const TokenSelector* selector;
  StudyAnalyses analyses;
  StudyOverlaps overlaps;
  StudyPages pages;
  StudySteering steering;
  std::vector<SiteFit> fits;
};

std::string continuation(const StudyResults& r, size_t seq) {
  return decode_continuation(*r.session.tokenizer, r.generations[seq].prompt_ids, r.generations[seq].generated_ids);
}

json study_json(const StudyResults& r) {
  json prompts = json::array();
  for (size_t i = 0; i < r.groups.texts.size(); ++i)
    prompts.push_back({{"index", i}, {"group", r.groups.names[static_cast<size_t>(r.groups.group_of_seq[i])]},
                       {"text", r.groups.texts[i]}, {"prompt_ids", r.generations[i].prompt_ids},
                       {"generated_ids", r.generations[i].generated_ids}, {"generated_text", continuation(r, i)},
                       {"stop_reason", r.generations[i].stop_reason}});
  json results = json::array();
  for (const auto& a : r.analyses.all) results.push_back(analysis_json(a));
  return {{"neurontrace_version", NT_VERSION}, {"kind", "study"}, {"model", r.identity.to_json()},
          {"config", json::parse(r.cfg.raw.dump())}, {"prompts", prompts}, {"results", results},
          {"overlap", r.overlaps.tables}, {"neuron_records", r.pages.files}, {"steering", r.steering.result},
          {"sae_fit", sae_fit_json(r.fits)}, {"warnings", r.analyses.warnings}};
}

// The generated texts per concept, then the baseline's.
std::vector<ConceptTexts> generated_texts(const StudyResults& r) {
  std::vector<ConceptTexts> out;
  for (size_t g = 1; g < r.groups.names.size(); ++g) {
    ConceptTexts ct;
    ct.concept_name = r.groups.names[g];
    for (int sq : r.groups.seqs[g]) {
      const auto& gen = r.generations[static_cast<size_t>(sq)];
      ct.texts.push_back({sq, r.groups.texts[static_cast<size_t>(sq)], continuation(r, static_cast<size_t>(sq)),
                          fmt::format("{} tokens, stop: {}", gen.generated_ids.size(), gen.stop_reason)});
    }
    out.push_back(std::move(ct));
  }
  if (r.groups.seqs[kBaselineGroup].empty()) return out;  // an atlas baseline alone: no texts
  ConceptTexts base;
  base.concept_name = "baseline";
  for (int sq : r.groups.seqs[kBaselineGroup])
    base.texts.push_back({sq, r.groups.texts[static_cast<size_t>(sq)], continuation(r, static_cast<size_t>(sq)), ""});
  out.push_back(std::move(base));
  return out;
}

// "48 new tokens, temperature 0.8, top-k 40, seed 1": the sampling settings that are in effect.
std::string generation_fact(const GenerationConfig& gen) {
  std::string s = fmt::format("{} new tokens, temperature {}", gen.max_new_tokens, gen.sampling.temperature);
  if (gen.sampling.temperature > 0 && gen.sampling.top_k > 0) s += fmt::format(", top-k {}", gen.sampling.top_k);
  if (gen.sampling.temperature > 0 && gen.sampling.top_p < 1) s += fmt::format(", top-p {}", gen.sampling.top_p);
  return s + fmt::format(", seed {}", gen.sampling.seed);
}

StudyReport study_report(StudyResults&& r) {
  const StudyConfig& cfg = r.cfg;
  StudyReport report;
  report.title = "neurontrace study: " + fs::path(cfg.path).filename().string();
  report.description = cfg.description;
  report.config_json = cfg.raw.dump(2);
  report.model_description = r.identity.describe();
  const std::string baseline = cfg.baseline_atlas.empty() ? fmt::format("{} baseline prompts", cfg.baseline.size())
                               : cfg.baseline.empty()      ? "the atlas " + cfg.baseline_atlas + " as baseline"
                                                           : fmt::format("{} baseline prompts (texts; the atlas {} as baseline)",
                                                                         cfg.baseline.size(), cfg.baseline_atlas);
  report.facts = {{"prompts", fmt::format("{} concepts × their prompts, {}", cfg.concepts.size(), baseline)},
                  {"generation", generation_fact(cfg.gen)},
                  {"normalization", normalization_name(cfg.analysis.normalization) + ", ranked by " +
                                        rank_by_name(cfg.analysis.rank_by) + ", top " + std::to_string(cfg.analysis.top_k) +
                                        " per sample"},
                  {"token selection", r.selector ? r.selector->describe() : "every token"}};
  for (const SiteFit& f : r.fits) report.facts.push_back({"SAE fit", sae_fit_text(f)});
  for (size_t s = 0; s < cfg.positions.size(); ++s)
    report.sections.push_back({setting_title(cfg.positions[s]), "", r.analyses.per_setting[s]});
  report.overlap_heatmaps = std::move(r.overlaps.heatmaps);
  report.overlap_note = fmt::format(
      "Number of neurons shared by the top {} consistent neurons of two concepts (diagonal: the concept's own "
      "count). Lower off-diagonal values mean more concept-specific neurons.",
      cfg.overlap_top_n);
  report.generated = generated_texts(r);
  report.neuron_pages = std::move(r.pages.pages);
  report.steering = std::move(r.steering.views);
  if (cfg.steer)
    report.steering_note =
        "KL: how far the steered model's next-token distribution moves from the unsteered one, teacher-forced on the "
        "unsteered text. The percentile places the traced neurons among random neurons: near 100% for KL means the "
        "traced neurons matter more than random ones.";
  report.warnings = r.analyses.warnings;
  report.footer = std::string("neurontrace ") + NT_VERSION;
  return report;
}

// Writes study.json, consistency.md/.csv and report.html; returns the report's path.
std::string write_results(StudyResults&& r, const std::string& out_dir) {
  write_out(out_dir + "/study.json", study_json(r).dump(1, ' ', false, json::error_handler_t::replace) + "\n");
  write_out(out_dir + "/consistency.md", consistency_markdown(r.analyses.all));
  write_out(out_dir + "/consistency.csv", consistency_csv(r.analyses.all));
  const std::string path = out_dir + "/report.html";
  write_study_report(path, study_report(std::move(r)));
  return path;
}

// part.json, once every group of the shard is checkpointed.
void write_part(const StudyConfig& cfg, const ModelIdentity& identity, const Groups& groups, const StudyOptions& opt) {
  StudyPart part{opt.out_dir, *opt.shard, fs::absolute(cfg.path).string(), study_config_hash(cfg), identity.path,
                 identity.fingerprint, weight_format_name(default_weight_format()), NT_VERSION, {}};
  const std::vector<char> wanted = wanted_groups(groups, *opt.shard);
  for (size_t g = 0; g < wanted.size(); ++g)
    if (wanted[g]) part.groups.push_back(static_cast<int>(g));
  write_study_part(part);
}

}  // namespace

StudyOutcome run_study(const StudyOptions& opt) {
  if (opt.out_dir.empty()) throw Error("study needs --out DIR");
  StudyConfig cfg = load_study_config(opt.config_path);
  if (!opt.atlas.empty()) cfg.atlas = opt.atlas;
  if (!opt.baseline_atlas.empty()) cfg.baseline_atlas = opt.baseline_atlas;
  const std::string model_name = opt.model.empty() ? cfg.model : opt.model;
  if (model_name.empty()) throw Error(cfg.path + ": no model (set \"model\" or give --model)");
  Session session = open_session(model_name);
  const ModelConfig& mc = session.model->config();
  const ModelIdentity identity = model_identity(session.model_dir, mc);
  try {
    for (const auto& sae : load_saes(cfg.saes, mc)) cfg.sites.emplace_back(sae, sae->hook_point(mc), SaeOutput::Latents);
    check_analysis_options(cfg.analysis, NeuronLayout(cfg.sites, mc), true);
    if (!cfg.baseline_atlas.empty()) check_atlas_baseline(cfg.analysis);
  } catch (const Error& e) {
    throw Error(cfg.path + ": " + e.what());
  }

  const Groups groups = make_groups(cfg);
  std::unique_ptr<TokenSelector> selector;
  if (!cfg.select_words.empty() || !cfg.select_regex.empty())
    selector = std::make_unique<TokenSelector>(cfg.select_words, cfg.select_regex, cfg.select_window);
  const std::unique_ptr<Recorder> rec = study_recorder(cfg, session, groups, selector.get());
  const Checkpoints cps = study_checkpoints(cfg, identity, groups, opt.out_dir);

  const StudyAtlases atlases = opt.shard ? StudyAtlases{} : study_atlases(cfg, session);
  StudyOutcome outcome;
  const auto generations = generate_and_record(cfg, session, groups, cps, *rec, opt, outcome);
  if (opt.shard) {
    write_part(cfg, identity, groups, opt);
    return outcome;
  }
  StudyAnalyses analyses = analyse(cfg, *rec, groups, atlases, opt.tables);
  if (opt.log)
    for (const auto& w : analyses.warnings) *opt.log << "neurontrace: warning: " << w << "\n";
  StudyOverlaps overlap_results = overlaps(cfg, analyses, opt.out_dir);
  StudyPages pages = neuron_pages(cfg, session, groups, *rec, generations, analyses, selector != nullptr, opt.out_dir);
  StudySteering steered = steering(cfg, session, *rec, atlases, analyses, opt.out_dir);
  std::vector<SiteFit> fits = fit_traced_saes(*session.model, cfg.sites, generations);
  if (opt.log)
    for (const SiteFit& f : fits) *opt.log << "neurontrace: SAE fit, " << sae_fit_text(f) << "\n";
  outcome.report_path = write_results({cfg, session, identity, groups, generations, selector.get(), std::move(analyses),
                                       std::move(overlap_results), std::move(pages), std::move(steered), std::move(fits)},
                                      opt.out_dir);
  return outcome;
}

}  // namespace nt
