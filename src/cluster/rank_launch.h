#pragma once
// A process started by an MPI launcher (mpirun -np N, mpiexec, srun --mpi=pmi2) that did not join
// an N-rank MPI job (a build without MPI, or one launcher's MPI started by another's) would run
// the whole job N times over, every copy writing the same outputs. main refuses that case.
namespace nt {

// Throws nt::Error (one line) when the launcher's job size (OMPI_COMM_WORLD_SIZE, PMI_SIZE) is
// above 1 and differs from rank_count(). Call after RankSession is made.
void check_rank_launch();

}  // namespace nt
