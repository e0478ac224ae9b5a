// libFuzzer target: nt::load_study_config (and nt::load_prompts, the prompt-file reader, on the
// same bytes) on an arbitrary JSON file.
//
// A study that loads must be runnable as far as its config goes: prompts present and non-empty,
// at least one site and position setting, positive batch / per_sample / rows / overlap size, and a
// steering concept that is one of the concepts; trace sites per-layer, steer.site one of them.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_common.h"
#include "io/prompts_file.h"
#include "study/study_config.h"

namespace {

using nt::fuzz::fail;

void check(const nt::StudyConfig& c) {
  if (c.baseline.empty() && c.baseline_atlas.empty()) fail("study without baseline prompts or atlas accepted");
  if (c.concepts.empty()) fail("study without concepts accepted");
  for (const auto& p : c.baseline)
    if (p.empty()) fail("empty baseline prompt accepted");
  for (const auto& [name, prompts] : c.concepts) {
    if (name.empty() || name == "baseline") fail("invalid concept name accepted");
    if (prompts.empty()) fail("concept without prompts accepted");
    for (const auto& p : prompts)
      if (p.empty()) fail("empty concept prompt accepted");
  }
  if (c.sites.empty() || c.positions.empty()) fail("no sites or positions accepted");
  if (c.gen.max_batch <= 0) fail("non-positive batch accepted");
  if (c.analysis.top_k <= 0 || c.analysis.table_rows <= 0) fail("non-positive per_sample / rows accepted");
  if (c.overlap_top_n <= 0) fail("non-positive overlap.top_n accepted");
  if (c.steer) {
    bool known = false;
    for (const auto& [name, prompts] : c.concepts) known |= name == c.steer->concept_name;
    if (!known) fail("steer.concept not among the concepts accepted");
    if (c.steer->prompts.empty()) fail("steer without prompts accepted");
    if (c.steer->top_n <= 0 || c.steer->controls < 0) fail("bad steer.top_n / controls accepted");
    if (c.steer->site && std::find(c.sites.begin(), c.sites.end(), *c.steer->site) == c.sites.end())
      fail("steer.site not among trace.sites accepted");
  }
  for (const nt::TraceSite& s : c.sites)
    if (s.is_sae() || !nt::site_is_per_layer(s.hook)) fail("global hook point accepted as a trace site");
  for (const auto& sae : c.saes)
    if (sae.empty()) fail("empty SAE path accepted");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static nt::fuzz::ScratchDir dir("study_config");
  static const std::string path = dir.file("study.json");
  nt::fuzz::write_bytes(path, std::string_view(reinterpret_cast<const char*>(data), size));
  nt::fuzz::expect_only_nt_errors([&] { check(nt::load_study_config(path)); });
  nt::fuzz::expect_only_nt_errors([&] {
    const auto prompts = nt::load_prompts(path);
    if (prompts.empty()) fail("empty prompt list accepted");
  });
  return 0;
}
