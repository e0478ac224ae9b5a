#include "trace/trace_run.h"

#include "util/error.h"

namespace nt {

std::vector<int> TraceRun::seqs_of(int group) const {
  std::vector<int> out;
  for (size_t i = 0; i < group_of_seq.size(); ++i)
    if (group_of_seq[i] == group) out.push_back(static_cast<int>(i));
  return out;
}

int TraceRun::group_index(const std::string& name) const {
  for (size_t i = 0; i < group_names.size(); ++i)
    if (group_names[i] == name) return static_cast<int>(i);
  return -1;
}

TraceRun run_trace(Session& session, const std::vector<PromptGroup>& groups, const RecorderOptions& options,
                   GenerationConfig gen, Hooks* hooks, std::function<void(const GenerationProgress&)> progress) {
  TraceRun run;
  for (size_t g = 0; g < groups.size(); ++g) {
    run.group_names.push_back(groups[g].name);
    for (const auto& p : groups[g].prompts) {
      run.texts.push_back(p);
      run.group_of_seq.push_back(static_cast<int>(g));
    }
  }
  if (run.texts.empty()) throw Error("no prompts to trace");
  const auto ids = session.encode_prompts(run.texts);
  run.recorder = std::make_unique<Recorder>(session.model->config(), *session.tokenizer, options, run.group_of_seq,
                                            static_cast<int>(groups.size()));
  Hooks own(session.model->config());
  Hooks& h = hooks ? *hooks : own;
  run.recorder->attach(h);
  gen.feed_last_token = true;  // every generated token gets its activations recorded
  Generator generator(*session.model, &h);
  if (progress) generator.on_progress(progress);
  Recorder* rec = run.recorder.get();
  generator.on_sequence_done([rec](int seq, const GenerationResult&) { rec->sequence_done(seq); });
  run.generations = generator.generate(ids, gen);
  return run;
}

}  // namespace nt
