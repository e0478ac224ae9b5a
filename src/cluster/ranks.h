#pragma once
// The processes of one job started by mpirun (MPI ranks), behind an interface that builds without
// MPI: a program built without MPI (NT_MPI off), or started without mpirun, is rank 0 of 1.
// ranks_mpi.cpp implements it with Open MPI, ranks_single.cpp without; CMake compiles one of them.
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

// Every rank's bytes, in rank order, on rank 0; an empty vector on the other ranks. Collective:
// every rank must call it. Each rank sends less than 2 GiB (MPI's int counts).
std::vector<std::string> gather_to_rank0(const std::string& bytes);

// Ends the whole job with exit status `code`: a rank that failed would otherwise leave the others
// waiting in a collective call. Returns (does nothing) when the job has one rank.
void abort_ranks(int code);

}  // namespace nt
