#pragma once
// The atlas of an MPI job: every rank has scanned one shard into an AtlasState, and rank 0 gets
// the state of the whole corpus without any part going through files.
#include "atlas/atlas_state.h"

namespace nt {

// Collective (every rank calls it with its own shard's state). Rank 0's `state` becomes the
// merge of all ranks' states, as one process scans the corpus (shard 0 of 1): the per-unit
// statistics (unit_statistics.h) by MPI_Reduce with a user-defined MPI_Op that calls
// merge_unit_statistics in rank order, the records gathered (MPI_Gatherv) a range of units at a
// time, so that rank 0 holds a bounded share of the other ranks' records at once, and merged with
// AtlasState::merge_records. The other ranks' states are left as they were.
// Throws nt::Error on rank 0 when the ranks scanned different settings (as AtlasState::merge).
void reduce_atlas_to_rank0(AtlasState& state);

}  // namespace nt
