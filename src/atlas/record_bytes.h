#pragma once
// The records (top contexts and samples) of a range of an atlas's units as bytes, to send them to
// another process, and merging such bytes into a state there: how the ranks of an MPI scan gather
// their records on rank 0 (cluster/atlas_ranks.h). Each record carries its own window tokens.
#include <cstddef>
#include <string>
#include <string_view>

#include "atlas/atlas_state.h"

namespace nt {

// The records of units [begin, end) of `state`.
std::string records_to_bytes(const AtlasState& state, size_t begin, size_t end);

// The most bytes records_to_bytes can give per unit under `settings`.
size_t max_record_bytes_per_unit(const AtlasSettings& settings);

// Merges the records in `bytes` (records_to_bytes of units [begin, end) of another part of the
// same scan) into `state`. Throws nt::Error "<from>: malformed atlas records" when they do not
// parse or exceed the settings' limits.
void merge_records_bytes(AtlasState& state, size_t begin, size_t end, std::string_view bytes, const std::string& from);

}  // namespace nt
