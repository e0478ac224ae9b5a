// neurontrace: trace which neurons of a transformer LM fire for a concept while it generates,
// and steer generation by switching them off or on.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <thread>

#include "cluster/rank_launch.h"
#include "cluster/ranks.h"
#include "commands.h"
#include "model/weight_matrix.h"
#include "util/error.h"
#include "util/malloc_tuning.h"
#include "util/message_text.h"
#include "util/thread_pool.h"

namespace {

// The one-line error format for anything that stops a command. Messages are escaped once more
// here (a no-op for the ones that already quote their file content safely) so that no raw byte
// from an input file reaches the terminal, whatever threw.
int report_error(const char* message) {
  std::fprintf(stderr, "neurontrace: error: %s\n", nt::escape_for_message(message, 4000).c_str());
  return 1;
}

int run_cli(int argc, char** argv) {
  nt::fix_malloc_mmap_threshold();
  CLI::App app{"neurontrace: trace and steer the neurons of transformer language models"};
  app.set_version_flag("--version", std::string("neurontrace ") + NT_VERSION);
  app.require_subcommand(1);
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  app.add_option("--threads", threads, "Worker threads for matrix products")->check(CLI::Range(1, 256));
  std::string weights = "f32";
  app.add_option("--weights", weights,
                 "Precision of the linear layers' weights: f32 (the checkpoint's values), bf16 or int8 "
                 "(per-row scales); converted once at load, faster decoding, slightly different numbers")
      ->check(CLI::IsMember({"f32", "bf16", "int8"}))
      ->capture_default_str();
  nt::cli::Runner run;
  for (auto add : {nt::cli::add_generate, nt::cli::add_trace, nt::cli::add_steer, nt::cli::add_study,
                   nt::cli::add_atlas}) {
    nt::cli::Command cmd = add(app);
    cmd.app->final_callback([&run, cmd] { run = cmd.run; });
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  nt::set_thread_count(threads);
  nt::set_default_weight_format(nt::parse_weight_format(weights));
  return run();
}

}  // namespace

// No exception leaves main: nt::Error carries the file or item at fault; anything else (a
// library's exception, a file-system error not converted where it happened) still ends in one
// line and exit status 1, not in std::terminate. Under mpirun a failed rank ends the whole job
// (the others would wait for it forever).
int main(int argc, char** argv) {
  nt::RankSession ranks(argc, argv);
  int status = 1;
  try {
    nt::check_rank_launch();
    status = run_cli(argc, argv);
  } catch (const std::bad_alloc&) {
    report_error("out of memory");
  } catch (const std::exception& e) {
    report_error(e.what());
  } catch (...) {
    report_error("unexpected internal error");
  }
  if (status != 0) nt::abort_ranks(status);
  return status;
}
