// Built without MPI: one process, rank 0 of 1.
#include "cluster/ranks.h"

namespace nt {

RankSession::RankSession(int&, char**&) {}
RankSession::~RankSession() = default;
int rank_index() { return 0; }
int rank_count() { return 1; }
void send_to_rank0(const std::string&, const std::function<void(int, std::string&&)>&) {}
void reduce_to_rank0(void*, size_t, size_t, MergeElements) {}
std::vector<std::string> gather_to_rank0(const std::string& bytes) { return {bytes}; }
void abort_ranks(int) {}

}  // namespace nt
