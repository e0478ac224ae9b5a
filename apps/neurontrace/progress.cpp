#include <unistd.h>

#include <chrono>
#include <cstdio>

#include "commands.h"

namespace nt::cli {

static double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

Progress::Progress(std::string label)
    : label_(std::move(label)), enabled_(::isatty(2) == 1), start_(now_seconds()) {}

Progress::~Progress() {
  if (enabled_) std::fprintf(stderr, "\r\033[K");
}

void Progress::update(const GenerationProgress& p) {
  if (!enabled_) return;
  const double dt = now_seconds() - start_;
  const int width = 30;
  const int filled = p.sequences_total ? width * p.sequences_done / p.sequences_total : width;
  std::string bar(static_cast<size_t>(filled), '#');
  bar.resize(width, '.');
  std::fprintf(stderr, "\r%s [%s] %d/%d prompts, %ld tokens, %.1f tok/s\033[K", label_.c_str(), bar.c_str(),
               p.sequences_done, p.sequences_total, p.tokens_generated, dt > 0 ? p.tokens_generated / dt : 0.0);
  std::fflush(stderr);
}

}  // namespace nt::cli
