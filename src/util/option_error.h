#pragma once
// A bad value of a named option, raised by the library where the rule lives (the one owner of
// each check). The option is named as the study config names it ("trace.per_sample",
// "generation.top_k", "steer.controls"); the CLI rewrites that name to its flag ("--per-sample"),
// so commands, study configs and bindings share one check and one wording.
#include <string>

#include "util/error.h"

namespace nt {

struct OptionError : Error {
  OptionError(std::string option_name, std::string problem_text)
      : Error(option_name + ": " + problem_text), option(std::move(option_name)), problem(std::move(problem_text)) {}
  std::string option;   // "trace.per_sample"
  std::string problem;  // "must be positive (got 0)"
};

}  // namespace nt
