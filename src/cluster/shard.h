#pragma once
// A share of a job split over independent processes (Slurm array tasks, cloud jobs) or MPI ranks:
// shard `index` of `count`, counted from 0 like Slurm's array task ids (--array=0-(N-1)).
#include <string>
#include <vector>

namespace nt {

struct Shard {
  int index = 0;
  int count = 1;
  std::string text() const { return std::to_string(index) + "/" + std::to_string(count); }
};

// "I/N" with 0 <= I < N; throws nt::OptionError("shard", ...) otherwise.
Shard parse_shard(const std::string& text);

// Splits items with the given weights (e.g. prompts per group) into `count` contiguous runs of
// about equal weight: the shard of each item, the same on every machine. An item goes to the
// shard its weight's midpoint falls in, so a shard may get nothing when items are fewer than shards.
std::vector<int> assign_shards(const std::vector<size_t>& weights, int count);

}  // namespace nt
