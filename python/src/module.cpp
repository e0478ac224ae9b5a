// neurontrace._core: the C++ engine for Python (python/neurontrace/__init__.py wraps it; the
// docstrings and signatures users see are in python/neurontrace/__init__.pyi too).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <iostream>
#include <map>
#include <optional>

#include "python_hooks.h"
#include "python_model.h"
#include "python_sae.h"
#include "sae/sae_open.h"
#include "study/study_runner.h"
#include "util/malloc_tuning.h"
#include "util/message_text.h"
#include "util/option_error.h"
#include "util/thread_pool.h"

namespace py = pybind11;
using namespace nt;
using namespace nt::python;

namespace {

PyObject* error_type = nullptr;

// nt::Error -> neurontrace.Error with the CLI's one-line message (escaped the same way).
void translate_errors(std::exception_ptr p) {
  try {
    if (p) std::rethrow_exception(p);
  } catch (const Error& e) {
    PyErr_SetString(error_type, escape_for_message(e.what(), 4000).c_str());
  }
}

// Runs `fn`, naming a bad option as the keyword argument that set it: "top_k: must be >= 0", where
// the CLI says "--top-k: ..." and a study config "generation.top_k: ...". `renamed`: options whose
// keyword is not their last name part ("atlas.top_k" is set by top=, as by --top).
template <typename Fn>
auto naming_kwargs(Fn fn, const std::map<std::string, std::string>& renamed = {}) {
  try {
    return fn();
  } catch (const OptionError& e) {
    const auto it = renamed.find(e.option);
    throw Error((it != renamed.end() ? it->second : e.option.substr(e.option.rfind('.') + 1)) + ": " + e.problem);
  }
}

GenerationConfig generation_config(int max_new_tokens, float temperature, int top_k, float top_p, uint64_t seed,
                                   bool stop_at_eos, int batch, bool recompute) {
  GenerationConfig g;
  g.max_new_tokens = max_new_tokens;
  g.sampling.temperature = temperature;
  g.sampling.top_k = top_k;
  g.sampling.top_p = top_p;
  g.sampling.seed = seed;
  g.stop_at_eos = stop_at_eos;
  if (batch < 1) throw OptionError("batch", "must be >= 1 (got " + std::to_string(batch) + ")");
  g.max_batch = batch;
  g.recompute = recompute;
  return g;
}

// Runs a study from a config file into `out` (study.json and the rest, as the CLI writes them);
// returns the report's path.
std::string study(const std::string& config_path, const std::string& out, const std::string& model, bool print_tables) {
  StudyOptions so;
  so.config_path = config_path;
  so.model = model;
  so.out_dir = out;
  so.progress = [](const GenerationProgress&) { check_python_signals(); };
  so.tables = print_tables ? &std::cout : nullptr;
  so.log = &std::cerr;
  py::gil_scoped_release release;
  const std::string report = run_study(so).report_path;
  if (print_tables) std::cout.flush();  // before Python prints anything more
  return report;
}

// `atlas query`: (the table's first rows as the CLI prints them, the CSV's path, the CSV).
py::tuple atlas_query(const AtlasQueryOptions& o) {
  AtlasQueryResult r;
  {
    py::gil_scoped_release release;
    r = naming_kwargs([&] { return query_atlas(o); });
  }
  return py::make_tuple(r.table, r.csv_file, r.csv);
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "neurontrace's C++ engine (use the neurontrace package, which wraps it)";
  fix_malloc_mmap_threshold();  // as the CLI does at start (util/malloc_tuning.h says why)
  error_type = PyErr_NewExceptionWithDoc("neurontrace.Error",
                                         "Bad input: a missing or malformed file, an unknown hook point, a bad option. "
                                         "The message is the command line's one-line message.",
                                         PyExc_ValueError, nullptr);
  m.attr("Error") = py::handle(error_type);
  py::register_exception_translator(translate_errors);

  m.def("set_threads", &set_thread_count, py::arg("threads"), "Worker threads for matrix products (process-wide).");

  py::class_<HookInfo>(m, "HookInfo", "What a hook function gets besides the activations.")
      .def_property_readonly("name", &HookInfo::name, "The hook point (TransformerLens name).")
      .def_property_readonly("layer", &HookInfo::layer, "Its layer (-1 for a global point).")
      .def_property_readonly("seq", &HookInfo::seq, "Per row: the sequence (index of its prompt).")
      .def_property_readonly("pos", &HookInfo::pos, "Per row: the position in its sequence.")
      .def_property_readonly("generated", &HookInfo::generated, "Per row: whether its token was generated.")
      .def_property_readonly("token", &HookInfo::token, "Per row: the token id.")
      .def("__repr__", [](const HookInfo& h) { return "<HookInfo " + h.name() + ">"; });

  py::class_<PythonHook>(m, "_Hook");

  // The trace command's options (neurontrace.trace sets them from its keyword arguments).
  py::class_<ConceptTraceOptions>(m, "_TraceOptions")
      .def(py::init<>())
      .def_readwrite("concept", &ConceptTraceOptions::concept_name)
      .def_readwrite("prompts", &ConceptTraceOptions::prompts)
      .def_readwrite("baseline", &ConceptTraceOptions::baseline)
      .def_readwrite("prompts_file", &ConceptTraceOptions::prompts_file)
      .def_readwrite("baseline_file", &ConceptTraceOptions::baseline_file)
      .def_readwrite("baseline_atlas", &ConceptTraceOptions::baseline_atlas)
      .def_readwrite("atlas", &ConceptTraceOptions::atlas)
      .def_readwrite("words", &ConceptTraceOptions::words)
      .def_readwrite("sites", &ConceptTraceOptions::sites)
      .def_readwrite("saes", &ConceptTraceOptions::saes)
      .def_readwrite("positions", &ConceptTraceOptions::positions)
      .def_readwrite("skip_first", &ConceptTraceOptions::skip_first)
      .def_readwrite("select_words", &ConceptTraceOptions::select_words)
      .def_readwrite("select_regex", &ConceptTraceOptions::select_regex)
      .def_readwrite("select_window", &ConceptTraceOptions::select_window)
      .def_readwrite("normalize", &ConceptTraceOptions::normalize)
      .def_readwrite("rank_by", &ConceptTraceOptions::rank_by)
      .def_readwrite("per_sample", &ConceptTraceOptions::per_sample)
      .def_readwrite("rows", &ConceptTraceOptions::rows)
      .def_readwrite("std_floor", &ConceptTraceOptions::std_floor)
      .def("set_generation", [](ConceptTraceOptions& o, int max_new_tokens, float temperature, int top_k, float top_p,
                                uint64_t seed, bool stop_at_eos, int batch) {
        o.gen = naming_kwargs([&] {
          return generation_config(max_new_tokens, temperature, top_k, top_p, seed, stop_at_eos, batch, false);
        });
      });

  // The steer command's options (neurontrace.steer sets them from its keyword arguments).
  py::class_<SteerRunOptions>(m, "_SteerOptions")
      .def(py::init<>())
      .def_readwrite("prompts", &SteerRunOptions::prompts)
      .def_readwrite("prompts_file", &SteerRunOptions::prompts_file)
      .def_readwrite("ablate", &SteerRunOptions::ablate)
      .def_readwrite("sae", &SteerRunOptions::sae)
      .def_readwrite("latents", &SteerRunOptions::latents)
      .def_readwrite("direction", &SteerRunOptions::direction)
      .def_readwrite("baseline", &SteerRunOptions::baseline)
      .def_readwrite("site", &SteerRunOptions::site)
      .def_readwrite("mode", &SteerRunOptions::mode)
      .def_readwrite("mode_given", &SteerRunOptions::mode_given)
      .def_readwrite("where", &SteerRunOptions::where)
      .def_readwrite("from_trace", &SteerRunOptions::from_trace)
      .def_readwrite("trace_positions", &SteerRunOptions::trace_positions)
      .def_readwrite("top", &SteerRunOptions::top)
      .def_readwrite("concept_words", &SteerRunOptions::concept_words)
      .def_readwrite("controls", &SteerRunOptions::controls)
      .def_readwrite("control_seed", &SteerRunOptions::control_seed)
      .def("set_sae_options", [](SteerRunOptions& o, bool center, std::optional<double> scale) {
        o.sae_options.center_input = center;
        o.sae_options.norm_scaling_factor = scale;
      })
      .def("set_generation", [](SteerRunOptions& o, int max_new_tokens, float temperature, int top_k, float top_p,
                                uint64_t seed, bool stop_at_eos, int batch) {
        o.gen = naming_kwargs([&] {
          return generation_config(max_new_tokens, temperature, top_k, top_p, seed, stop_at_eos, batch, false);
        });
      });

  // The atlas command's options (neurontrace.atlas sets them from its keyword arguments).
  py::class_<AtlasRunOptions>(m, "_AtlasOptions")
      .def(py::init<>())
      .def_readwrite("corpus", &AtlasRunOptions::corpus)
      .def_readwrite("text_field", &AtlasRunOptions::text_field)
      .def_readwrite("skip_bad_lines", &AtlasRunOptions::skip_bad_lines)
      .def_readwrite("sites", &AtlasRunOptions::sites)
      .def_readwrite("saes", &AtlasRunOptions::saes)
      .def_readwrite("context", &AtlasRunOptions::context)
      .def_readwrite("top", &AtlasRunOptions::top_k)
      .def_readwrite("samples", &AtlasRunOptions::samples)
      .def_readwrite("threshold", &AtlasRunOptions::threshold)
      .def_readwrite("max_tokens", &AtlasRunOptions::max_tokens)
      .def_readwrite("batch", &AtlasRunOptions::batch)
      .def_readwrite("checkpoint_every", &AtlasRunOptions::checkpoint_every)
      .def_readwrite("shard", &AtlasRunOptions::shard)
      .def_readwrite("out", &AtlasRunOptions::out_dir);

  py::class_<AtlasQueryOptions>(m, "_AtlasQueryOptions")
      .def(py::init<>())
      .def_readwrite("dir", &AtlasQueryOptions::dir)
      .def_readwrite("model", &AtlasQueryOptions::model)
      .def_readwrite("csv", &AtlasQueryOptions::csv)
      .def_readwrite("words", &AtlasQueryOptions::words)
      .def_readwrite("window", &AtlasQueryOptions::window)
      .def_readwrite("rows", &AtlasQueryOptions::rows);
  m.def("_atlas_query", &atlas_query, py::arg("options"));

  bind_sae(m);

  py::class_<PythonModel>(m, "Model", "A loaded model (use neurontrace.load).")
      .def(py::init<const std::string&, const std::string&>(), py::arg("model"), py::arg("weights") = "f32")
      .def_property_readonly("config", &PythonModel::config)
      .def_property_readonly("hook_points", &PythonModel::hook_points)
      .def("to_tokens", &PythonModel::to_tokens, py::arg("text"))
      .def("to_string", &PythonModel::to_string, py::arg("ids"))
      .def(
          "generate",
          [](PythonModel& self, const std::vector<Prompt>& prompts, int max_new_tokens, float temperature, int top_k,
             float top_p, uint64_t seed, bool stop_at_eos, int batch, bool recompute) {
            return naming_kwargs([&] {
              return self.generate(prompts, generation_config(max_new_tokens, temperature, top_k, top_p, seed,
                                                              stop_at_eos, batch, recompute));
            });
          },
          py::arg("prompts"), py::arg("max_new_tokens") = 32, py::arg("temperature") = 0.0f, py::arg("top_k") = 0,
          py::arg("top_p") = 1.0f, py::arg("seed") = 0, py::arg("stop_at_eos") = true, py::arg("batch") = 64,
          py::arg("recompute") = false)
      .def("_trace", [](PythonModel& self, const ConceptTraceOptions& o) { return naming_kwargs([&] { return self.trace(o); }); })
      .def("_steer", [](PythonModel& self, const SteerRunOptions& o) { return naming_kwargs([&] { return self.steer(o); }); })
      .def("_atlas",
           [](PythonModel& self, const AtlasRunOptions& o) {
             const AtlasRunSummary s = naming_kwargs([&] { return self.atlas(o); }, {{"atlas.top_k", "top"}});
             py::dict d;
             d["documents"] = s.documents;
             d["tokens"] = s.tokens;
             d["units"] = s.units;
             d["skipped_lines"] = s.skipped_lines;
             d["part"] = s.part;
             return d;
           })
      .def(
          "load_sae",
          [](PythonModel& self, const std::string& spec, bool sae_center, std::optional<double> sae_scale) {
            SaeOpenOptions o;
            o.center_input = sae_center;
            o.norm_scaling_factor = sae_scale;
            return naming_kwargs([&] { return PythonSae{open_sae(spec, o, self.session().model->config())}; });
          },
          py::arg("spec"), py::arg("sae_center") = false, py::arg("sae_scale") = py::none(),
          "Open an SAE (a SAELens folder, a params.npz or a Hub id) for this model, as --sae does.")
      .def("_run_with_cache", &PythonModel::run_with_cache, py::arg("prompts"), py::arg("names"))
      .def("add_hook", &PythonModel::add_hook, py::arg("name"), py::arg("fn"))
      .def("reset_hooks", &PythonModel::reset_hooks)
      .def("_get_hooks", [](PythonModel& self) { return self.hooks(); })
      .def("_set_hooks", &PythonModel::set_hooks);

  m.def("_study", &study, py::arg("config_path"), py::arg("out"), py::arg("model"), py::arg("print_tables"));
}
