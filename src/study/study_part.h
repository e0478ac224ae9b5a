#pragma once
// One shard's share of a study (`neurontrace study --shard I/N --out DIR/part-I`): the group
// checkpoints of its prompt groups under DIR/part-I/groups/ and, written last (atomically) once
// they are all done, DIR/part-I/part.json saying what it is. A shard that died has no part.json;
// rerun alone, it resumes from its checkpoints. `study merge` reads the parts back, refusing
// parts of different studies, models or settings and a missing or duplicate shard.
#include <string>
#include <vector>

#include "cluster/shard.h"
#include "study/study_config.h"

namespace nt {

struct StudyPart {
  std::string dir;          // the part's folder
  Shard shard;
  std::string config_path;  // absolute path of the study config
  std::string config_hash;  // of the config's JSON: generation, trace, prompts, steering
  std::string model_path;   // absolute model folder
  std::string fingerprint;  // the model's (io/model_identity.h)
  std::string weights;      // --weights: f32, bf16 or int8
  std::string version;      // neurontrace's
  std::vector<int> groups;  // prompt groups it generated (0 = baseline)
};

// What the parts of one study must share: a hash of its config's JSON.
std::string study_config_hash(const StudyConfig& cfg);

// The prompt groups of `shard`, given the number of prompts of each group (contiguous runs of
// about equal numbers of prompts, cluster/shard.h).
std::vector<int> shard_groups(const std::vector<size_t>& prompts_per_group, const Shard& shard);

void write_study_part(const StudyPart& part);

// Throws nt::Error naming `dir` when it holds no finished part (no or malformed part.json).
StudyPart read_study_part(const std::string& dir);

// Checks that `parts` are the N shards of one study run with one model and the same settings;
// throws nt::Error naming the parts (or the shard) at fault.
void check_study_parts(const std::vector<StudyPart>& parts);

}  // namespace nt
