#pragma once
// The processes of one job started by mpirun (MPI ranks), behind an interface that builds without
// MPI: a program built without MPI (NT_MPI off), or started without mpirun, is rank 0 of 1.
// ranks_mpi.cpp implements it with Open MPI, ranks_single.cpp without; CMake compiles one of them.
#include <functional>
#include <string>

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

// Ends the whole job with exit status `code`: a rank that failed would otherwise leave the others
// waiting in a collective call. Returns (does nothing) when the job has one rank.
void abort_ranks(int code);

}  // namespace nt
