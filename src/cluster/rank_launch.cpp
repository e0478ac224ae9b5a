#include "cluster/rank_launch.h"

#include <cstdlib>
#include <string>

#include "cluster/ranks.h"
#include "util/error.h"

namespace nt {

namespace {

// The variables a launcher sets for the job's size: Open MPI's mpirun, and the PMI of MPICH's
// and Intel MPI's mpiexec (Hydra) and of Slurm's srun --mpi=pmi2.
constexpr const char* kSizeVariables[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"};

}  // namespace

void check_rank_launch() {
  for (const char* name : kSizeVariables) {
    const char* value = std::getenv(name);
    if (value == nullptr) continue;
    const long launched = std::strtol(value, nullptr, 10);
    if (launched <= 1 || rank_count() == launched) continue;
    throw Error("started as one of " + std::to_string(launched) + " processes (" + name + "=" + std::to_string(launched) +
                ") that do not form an MPI job (this neurontrace was built without MPI, or another MPI's launcher "
                "started it): each would run the whole job; run it once, or rebuild with Open MPI (libopenmpi-dev)");
  }
}

}  // namespace nt
