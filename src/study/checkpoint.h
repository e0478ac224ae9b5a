#pragma once
// Resumable studies: when every sequence of a prompt group (a concept, or the baseline) has
// finished, its generations and recorded statistics are written atomically to
// <out>/groups/<index>.safetensors. A restarted study restores the groups whose checkpoint carries
// the same key (a hash of the model and of every setting that changes the recording) and
// generates only the others.
#include <optional>
#include <string>
#include <vector>

#include "runtime/generator.h"
#include "trace/recorder.h"

namespace nt {

struct GroupCheckpoint {
  std::vector<int> seqs;                      // global sequence ids of the group
  std::vector<GenerationResult> generations;  // [i] for seqs[i]
};

void save_group_checkpoint(const std::string& path, const std::string& key, const Recorder& rec, int group,
                           const std::vector<int>& seqs, const std::vector<GenerationResult>& generations);

// Restores into `rec` and returns the generations; nullopt when the file is absent or its key
// differs (a stale checkpoint is ignored and recomputed). Throws nt::Error on a corrupt file.
std::optional<GroupCheckpoint> load_group_checkpoint(const std::string& path, const std::string& key, Recorder& rec,
                                                     int group, const std::vector<int>& seqs);

}  // namespace nt
