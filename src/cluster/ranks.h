#pragma once
// The processes of one job started by mpirun (MPI ranks), behind an interface that builds without
// MPI: a program built without MPI (NT_MPI off), or started without mpirun, is rank 0 of 1.
// ranks_mpi.cpp implements it with Open MPI, ranks_single.cpp without; CMake compiles one of them.
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace nt {

// Joins the MPI job when the process was started by mpirun (MPI_Init), and leaves it when
// destroyed (MPI_Finalize); does nothing otherwise. One per process, made first in main.
class RankSession {
 public:
  RankSession(int& argc, char**& argv);
  ~RankSession();
  RankSession(const RankSession&) = delete;
  RankSession& operator=(const RankSession&) = delete;
};

int rank_index();  // 0 .. rank_count() - 1
int rank_count();  // 1 unless started by mpirun -np N with N > 1

// Sends every other rank's `bytes` to rank 0, which gets them one rank at a time, in rank order
// (`receive(rank, bytes)`, ranks 1 .. N-1), so it holds one rank's state at a time besides its
// own; `receive` is not called on the other ranks. Collective: every rank must call it. Any size
// (sent in pieces under MPI's 2 GiB message limit).
void send_to_rank0(const std::string& bytes, const std::function<void(int rank, std::string&& bytes)>& receive);

// `right[i]` becomes `left[i]` combined with `right[i]`, for i < n, `left` holding the lower ranks'
// part: an element-wise merge that need not commute (its order is kept) but must associate (up to
// rounding: MPI chooses the grouping).
using MergeElements = void (*)(const void* left, void* right, size_t n);

// Reduces `count` elements of `element_bytes` bytes each (trivially copyable) to rank 0 by
// MPI_Reduce with a user-defined, non-commutative MPI_Op that calls `merge`: rank 0's `data`
// becomes data(0) . data(1) . ... . data(N-1); the other ranks' is unspecified afterwards.
// Collective: every rank must call it with the same count.
void reduce_to_rank0(void* data, size_t count, size_t element_bytes, MergeElements merge);

// Every rank's `bytes` on rank 0 (MPI_Gatherv), indexed by rank; empty on the other ranks.
// Collective. All ranks' bytes together must stay under MPI's 2 GiB message limit (throws nt::Error).
std::vector<std::string> gather_to_rank0(const std::string& bytes);

// Ends the whole job with exit status `code`: a rank that failed would otherwise leave the others
// waiting in a collective call. Returns (does nothing) when the job has one rank.
void abort_ranks(int code);

}  // namespace nt
