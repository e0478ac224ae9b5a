// A study split over processes: merging the parts of `study --shard I/N` runs, and the same
// split over MPI ranks (each rank one shard, the parts sent to rank 0, which merges them).
#include <algorithm>
#include <filesystem>

#include "cluster/folder_bundle.h"
#include "cluster/ranks.h"
#include "model/weight_matrix.h"
#include "study/study_config.h"
#include "study/study_part.h"
#include "study/study_runner.h"
#include "util/atomic_file.h"
#include "util/error.h"

namespace nt {

namespace {

namespace fs = std::filesystem;

// Copies the checkpoints of each part's own groups (<group>-<name>.safetensors) into <out>/groups,
// where run_study restores them.
void collect_checkpoints(const std::vector<StudyPart>& parts, const std::string& out_dir) {
  make_directories(out_dir + "/groups");
  for (const auto& p : parts)
    for (const auto& e : fs::directory_iterator(p.dir + "/groups")) {
      const std::string name = e.path().filename().string();
      const bool own = std::any_of(p.groups.begin(), p.groups.end(),
                                   [&](int g) { return name.starts_with(std::to_string(g) + "-"); });
      if (own && e.path().extension() == ".safetensors")
        write_file_atomic(out_dir + "/groups/" + name, read_file(e.path().string()));
    }
}

// The parts' own settings must still hold: the same --weights, the config unchanged since.
void check_current_settings(const StudyPart& part) {
  const std::string weights = weight_format_name(default_weight_format());
  if (part.weights != weights)
    throw Error("study merge: the parts were made with --weights " + part.weights + ", this merge runs with " + weights);
  if (study_config_hash(load_study_config(part.config_path)) != part.config_hash)
    throw Error("study merge: " + part.config_path + " changed since the parts were made");
}

}  // namespace

StudyOutcome merge_study(const std::vector<std::string>& part_dirs, StudyOptions options) {
  if (options.out_dir.empty()) throw Error("study merge needs --out DIR");
  std::vector<StudyPart> parts;
  for (const auto& dir : part_dirs) parts.push_back(read_study_part(dir));
  check_study_parts(parts);
  check_current_settings(parts.front());
  collect_checkpoints(parts, options.out_dir);
  options.config_path = parts.front().config_path;
  options.model = parts.front().model_path;
  options.shard.reset();
  options.restore_only = true;
  return run_study(options);
}

StudyOutcome run_study_on_ranks(const StudyOptions& options) {
  if (rank_count() == 1) return run_study(options);
  if (options.out_dir.empty()) throw Error("study needs --out DIR");
  const int me = rank_index();
  auto part_dir = [&](int rank) { return options.out_dir + "/ranks/part-" + std::to_string(rank); };
  StudyOptions part = options;
  part.out_dir = part_dir(me);
  part.shard = Shard{me, rank_count()};
  if (me != 0) part.progress = nullptr;
  part.tables = nullptr;
  run_study(part);
  send_to_rank0(me == 0 ? std::string() : bundle_folder(part.out_dir),
                [&](int rank, std::string&& bundle) { unbundle_folder(bundle, part_dir(rank)); });
  if (me != 0) return {};
  std::vector<std::string> dirs;
  for (int r = 0; r < rank_count(); ++r) dirs.push_back(part_dir(r));
  return merge_study(dirs, options);
}

}  // namespace nt
