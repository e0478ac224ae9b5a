#include "python_model.h"

#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <functional>

#include "hooks/hook_point.h"
#include "io/model_identity.h"
#include "io/prompts_file.h"
#include "model/weight_matrix.h"
#include "report/consistency_table.h"
#include "report/sae_fit_report.h"
#include "report/trace_json.h"
#include "util/error.h"

namespace nt::python {

namespace {

// Decoded token text as a Python str; bytes that are not UTF-8 (half a character) become U+FFFD,
// as in the CLI's JSON.
py::str utf8_text(const std::string& bytes) {
  PyObject* s = PyUnicode_DecodeUTF8(bytes.data(), static_cast<py::ssize_t>(bytes.size()), "replace");
  if (!s) throw py::error_already_set();
  return py::reinterpret_steal<py::str>(s);
}

// Runs every prompt once through the model (no generation), a few prompts per step (up to 256
// rows, a longer prompt alone), with every row's logits; `step_done` gets each step's logits.
void prefill(Model& model, const std::vector<std::vector<int>>& prompts, const Hooks& hooks,
             const std::function<void(const StepBatch&, const float*)>& step_done) {
  constexpr size_t kMaxStepRows = 256;
  KVCache cache(model.config());
  std::vector<float> logits;
  for (size_t first = 0; first < prompts.size();) {
    StepBatch step;
    size_t last = first;
    while (last < prompts.size() && (last == first || step.tokens.size() + prompts[last].size() <= kMaxStepRows)) {
      const int seq = static_cast<int>(last);
      cache.open(seq, static_cast<int>(prompts[last].size()));
      for (size_t p = 0; p < prompts[last].size(); ++p) {
        step.tokens.push_back(prompts[last][p]);
        step.rows.push_back(RowInfo{seq, static_cast<int>(p), false, prompts[last][p]});
        step.logit_rows.push_back(static_cast<int>(step.rows.size()) - 1);
      }
      ++last;
    }
    logits.resize(step.rows.size() * static_cast<size_t>(model.config().vocab_size));
    model.forward(step, cache, &hooks, logits.data());
    step_done(step, logits.data());
    for (size_t i = first; i < last; ++i) cache.close(static_cast<int>(i));
    first = last;
    check_python_signals();
  }
}

}  // namespace

Computing::Computing(PythonModel& model) : model_(model) {
  if (model.owner_.load() == std::this_thread::get_id())
    throw Error("a model cannot be run from inside one of its own hooks");
  model.busy_.lock();
  model.owner_.store(std::this_thread::get_id());
}

Computing::~Computing() {
  model_.owner_.store(std::thread::id());
  model_.busy_.unlock();
}

Hooks make_hooks(const ModelConfig& config, const std::vector<PythonHook>& snapshot) {
  Hooks hooks(config);
  for (const auto& h : snapshot) hooks.add(h.point, python_hook_fn(h));
  return hooks;
}

PythonModel::PythonModel(const std::string& model, const std::string& weights) : weights_(weights) {
  const WeightFormat format = parse_weight_format(weights);
  py::gil_scoped_release release;
  session_ = open_session(model, format);
}

py::dict PythonModel::config() const {
  const ModelConfig& c = session_.model->config();
  py::dict d;
  d["model_type"] = c.model_type;
  d["n_layers"] = c.n_layer;
  d["d_model"] = c.d_model;
  d["n_heads"] = c.n_head;
  d["n_key_value_heads"] = c.n_kv_head;
  d["d_head"] = c.head_dim;
  d["d_mlp"] = c.d_mlp;
  d["d_vocab"] = c.vocab_size;
  d["n_ctx"] = c.n_ctx;
  d["act_fn"] = c.activation;
  d["eps"] = c.norm_eps;
  d["bos_token_id"] = c.bos_id;
  d["eos_token_id"] = c.eos_id;
  d["weights"] = weights_;
  d["path"] = session_.model_dir;
  return d;
}

std::vector<std::string> PythonModel::hook_points() const {
  // TransformerLens's order: the points before the blocks, every block's, the points after.
  const ModelConfig& c = session_.model->config();
  const auto sites = model_hook_sites(c);
  std::vector<std::string> before, per_layer, after;
  for (HookSite s : sites) {
    if (site_is_per_layer(s)) per_layer.push_back(site_name(s));
    else (per_layer.empty() ? before : after).push_back(hook_name({s, -1}));
  }
  std::vector<std::string> names = before;
  for (int l = 0; l < c.n_layer; ++l)
    for (const auto& s : per_layer) names.push_back("blocks." + std::to_string(l) + "." + s);
  names.insert(names.end(), after.begin(), after.end());
  return names;
}

std::vector<int> PythonModel::to_tokens(const std::string& text) const { return session_.encode_prompt(text, 0); }

py::str PythonModel::to_string(const std::vector<int>& ids) const {
  const int vocab = session_.model->config().vocab_size;
  for (int id : ids)
    if (id < 0 || id >= vocab)
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary (0.." + std::to_string(vocab - 1) + ")");
  return utf8_text(session_.tokenizer->decode(ids));
}

std::vector<std::vector<int>> PythonModel::encode(const std::vector<Prompt>& prompts) const {
  if (prompts.empty()) throw Error("no prompt given");
  std::vector<std::vector<int>> ids;
  for (size_t i = 0; i < prompts.size(); ++i) {
    if (const auto* text = std::get_if<std::string>(&prompts[i])) ids.push_back(session_.encode_prompt(*text, i));
    else ids.push_back(std::get<std::vector<int>>(prompts[i]));
  }
  return ids;
}

std::vector<HookPoint> PythonModel::points_of(const std::string& name) const {
  const ModelConfig& c = session_.model->config();
  const HookName parsed = parse_hook_name(name);
  std::vector<HookPoint> points;
  if (site_is_per_layer(parsed.site) && parsed.layer < 0)
    for (int l = 0; l < c.n_layer; ++l) points.push_back({parsed.site, l});
  else
    points.push_back({parsed.site, parsed.layer});
  for (const auto& p : points) check_hook_point(c, p);
  return points;
}

void PythonModel::add_hook(const std::string& name, py::function fn) {
  for (const auto& p : points_of(name)) hooks_.push_back({p, fn});
}

py::list PythonModel::generate(const std::vector<Prompt>& prompts, const GenerationConfig& config) {
  const auto ids = encode(prompts);
  const std::vector<PythonHook> snapshot = hooks_;
  Hooks hooks = make_hooks(session_.model->config(), snapshot);
  std::vector<GenerationResult> results;
  {
    py::gil_scoped_release release;
    Computing computing(*this);
    Generator generator(*session_.model, snapshot.empty() ? nullptr : &hooks);
    generator.on_progress([](const GenerationProgress&) { check_python_signals(); });
    results = generator.generate(ids, config);
  }
  py::list out;
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    py::dict d;
    const auto* text = std::get_if<std::string>(&prompts[i]);
    d["prompt"] = text ? utf8_text(*text) : utf8_text(session_.tokenizer->decode(r.prompt_ids));
    d["prompt_ids"] = r.prompt_ids;
    d["generated_ids"] = r.generated_ids;
    d["text"] = utf8_text(decode_continuation(*session_.tokenizer, r.prompt_ids, r.generated_ids));
    d["stop_reason"] = r.stop_reason;
    out.append(d);
  }
  return out;
}

}  // namespace nt::python

namespace nt::python {

py::tuple PythonModel::run_with_cache(const std::vector<Prompt>& prompts, const std::vector<std::string>& names) {
  const ModelConfig& c = session_.model->config();
  const auto ids = encode(prompts);
  for (size_t i = 0; i < ids.size(); ++i) {
    // (Text prompts were checked by encode_prompt; positions past the context by the model.)
    if (ids[i].empty()) throw Error("prompt " + std::to_string(i) + " is empty");
  }
  std::vector<std::string> keys;
  std::vector<HookPoint> points;
  for (const auto& name : names.empty() ? hook_points() : names)
    for (const auto& p : points_of(name))
      if (std::find(points.begin(), points.end(), p) == points.end()) {
        points.push_back(p);
        keys.push_back(hook_name(p));
      }

  const auto batch = static_cast<py::ssize_t>(ids.size());
  py::ssize_t longest = 0;
  py::array_t<int64_t> lengths(batch);
  for (py::ssize_t b = 0; b < batch; ++b) {
    lengths.mutable_at(b) = static_cast<int64_t>(ids[static_cast<size_t>(b)].size());
    longest = std::max(longest, static_cast<py::ssize_t>(ids[static_cast<size_t>(b)].size()));
  }
  auto zeros = [&](int width) {
    py::array_t<float> a({batch, longest, static_cast<py::ssize_t>(width)});
    std::fill_n(a.mutable_data(), a.size(), 0.0f);
    return a;
  };
  py::array_t<float> logits = zeros(c.vocab_size);
  py::dict cache;
  std::vector<float*> cache_data;
  for (size_t k = 0; k < points.size(); ++k) {
    py::array_t<float> a = zeros(site_width(points[k].site, c));
    cache_data.push_back(a.mutable_data());
    cache[py::str(keys[k])] = a;
  }

  // The user's hooks run first, so the cache holds what they left (as in TransformerLens).
  const std::vector<PythonHook> snapshot = hooks_;
  Hooks hooks = make_hooks(c, snapshot);
  for (size_t k = 0; k < points.size(); ++k)
    hooks.add(points[k], [out = cache_data[k], longest](const HookContext& ctx, float* acts) {
      for (size_t r = 0; r < ctx.rows.size(); ++r)
        std::memcpy(out + (static_cast<size_t>(ctx.rows[r].seq) * longest + ctx.rows[r].pos) * ctx.width,
                    acts + r * ctx.width, static_cast<size_t>(ctx.width) * sizeof(float));
    });
  float* logits_out = logits.mutable_data();
  {
    py::gil_scoped_release release;
    Computing computing(*this);
    prefill(*session_.model, ids, hooks, [&](const StepBatch& step, const float* step_logits) {
      const size_t vocab = static_cast<size_t>(c.vocab_size);
      for (size_t r = 0; r < step.rows.size(); ++r)
        std::memcpy(logits_out + (static_cast<size_t>(step.rows[r].seq) * longest + step.rows[r].pos) * vocab,
                    step_logits + r * vocab, vocab * sizeof(float));
    });
  }
  return py::make_tuple(logits, cache, lengths);
}

}  // namespace nt::python

namespace nt::python {

std::pair<std::string, std::string> PythonModel::trace(ConceptTraceOptions o) {
  const ConceptTracePlan plan = plan_concept_trace(o);
  if (!o.prompts_file.empty()) o.prompts = load_prompts(o.prompts_file);
  if (!o.baseline_file.empty()) o.baseline = load_prompts(o.baseline_file);
  if (o.prompts.empty()) throw Error("no prompt given");
  const std::vector<PythonHook> snapshot = hooks_;
  Hooks hooks = make_hooks(session_.model->config(), snapshot);
  py::gil_scoped_release release;
  Computing computing(*this);
  const ConceptTrace result = run_concept_trace(session_, o, plan, snapshot.empty() ? nullptr : &hooks,
                                                [](const GenerationProgress&) { check_python_signals(); });
  const ModelIdentity id = model_identity(session_.model_dir, session_.model->config());
  auto json = trace_json(result.run, *session_.tokenizer, id, plan.config, result.analyses);
  if (!result.sae_fits.empty()) json["sae_fit"] = sae_fit_json(result.sae_fits);
  std::string tables;
  for (const auto& a : result.analyses) tables += consistency_text(a) + "\n";
  return {json.dump(1, ' ', false, nlohmann::json::error_handler_t::replace), tables};
}

std::string PythonModel::steer(const SteerRunOptions& o) {
  if (!hooks_.empty())
    throw Error("steer runs its own intervention on a model without hooks; call reset_hooks() first");
  SteerPlan plan = plan_steer(o);
  py::gil_scoped_release release;
  Computing computing(*this);
  const SteeringResult result = run_steer(session_, o, std::move(plan));
  const ModelIdentity id = model_identity(session_.model_dir, session_.model->config());
  return steer_json(result, id, o).dump(1, ' ', false, nlohmann::json::error_handler_t::replace);
}

AtlasRunSummary PythonModel::atlas(AtlasRunOptions o) {
  if (!hooks_.empty()) throw Error("atlas scans the model as loaded, without hooks; call reset_hooks() first");
  const AtlasSettings settings = plan_atlas(o);
  o.progress = [](const ScanProgress&) { check_python_signals(); };
  py::gil_scoped_release release;
  Computing computing(*this);
  return run_atlas(session_, o, settings);
}

}  // namespace nt::python
