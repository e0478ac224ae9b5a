// Built without MPI: one process, rank 0 of 1.
#include "cluster/ranks.h"

namespace nt {

RankSession::RankSession(int&, char**&) {}
RankSession::~RankSession() = default;
int rank_index() { return 0; }
int rank_count() { return 1; }
std::vector<std::string> gather_to_rank0(const std::string& bytes) { return {bytes}; }
void abort_ranks(int) {}

}  // namespace nt
