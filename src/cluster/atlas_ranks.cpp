#include "cluster/atlas_ranks.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "atlas/record_bytes.h"
#include "cluster/ranks.h"

namespace nt {

namespace {

// The other ranks' records gathered per round together stay under this (MPI's limit is 2 GiB).
constexpr size_t kRecordBytesPerRound = size_t{256} << 20;

void merge_statistics_elements(const void* left, void* right, size_t n) {
  const auto* a = static_cast<const UnitStatistics*>(left);
  auto* b = static_cast<UnitStatistics*>(right);
  for (size_t i = 0; i < n; ++i) {
    UnitStatistics merged = a[i];
    merge_unit_statistics(merged, b[i]);
    b[i] = merged;
  }
}

struct PartTotals {
  int64_t tokens = 0, documents = 0;
};

// Every rank's settings and shards checked on rank 0 (as AtlasState::merge checks a part), and
// the ranks' token and document counts added up there.
PartTotals gather_part_headers(const AtlasState& state) {
  const nlohmann::json mine{{"settings", state.settings.to_json()}, {"shards", state.shards},
                            {"tokens", state.tokens}, {"documents", state.documents}};
  const std::vector<std::string> headers = gather_to_rank0(mine.dump());
  PartTotals totals{state.tokens, state.documents};
  std::vector<int> seen = state.shards;
  for (size_t r = 1; r < headers.size(); ++r) {
    const nlohmann::json part = nlohmann::json::parse(headers[r]);
    const std::vector<int> shards = part.at("shards").get<std::vector<int>>();
    check_disjoint_parts(state.settings, seen, AtlasSettings::from_json(part.at("settings")), shards);
    seen.insert(seen.end(), shards.begin(), shards.end());
    totals.tokens += part.at("tokens").get<int64_t>();
    totals.documents += part.at("documents").get<int64_t>();
  }
  return totals;
}

void reduce_statistics(AtlasState& state) {
  std::vector<UnitStatistics> units(state.layout.total);
  for (size_t u = 0; u < units.size(); ++u) units[u] = state.statistics(u);
  reduce_to_rank0(units.data(), units.size(), sizeof(UnitStatistics), merge_statistics_elements);
  if (rank_index() != 0) return;
  for (size_t u = 0; u < units.size(); ++u) state.set_statistics(u, units[u]);
}

void gather_records(AtlasState& state) {
  const size_t per_unit = max_record_bytes_per_unit(state.settings) * static_cast<size_t>(rank_count());
  const size_t units_per_round = std::max<size_t>(1, kRecordBytesPerRound / per_unit);
  const bool root = rank_index() == 0;
  for (size_t begin = 0; begin < state.layout.total; begin += units_per_round) {
    const size_t end = std::min(state.layout.total, begin + units_per_round);
    const std::vector<std::string> parts = gather_to_rank0(root ? std::string() : records_to_bytes(state, begin, end));
    for (size_t r = 1; r < parts.size(); ++r) merge_records_bytes(state, begin, end, parts[r], "rank " + std::to_string(r));
  }
}

}  // namespace

void reduce_atlas_to_rank0(AtlasState& state) {
  if (rank_count() == 1) return;
  const PartTotals totals = gather_part_headers(state);
  reduce_statistics(state);
  gather_records(state);
  if (rank_index() != 0) return;
  state.tokens = totals.tokens;
  state.documents = totals.documents;
  state.settings.shard_index = 0;
  state.settings.shard_count = 1;
  state.shards = {0};
}

}  // namespace nt
