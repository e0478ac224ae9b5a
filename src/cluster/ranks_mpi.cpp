// Open MPI ranks. MPI is initialised only when mpirun started the process (Open MPI sets
// OMPI_COMM_WORLD_SIZE; PMIx launchers such as srun set PMIX_RANK), so a plain `neurontrace`
// run never pays for, or prints anything from, MPI's start-up.
#include <mpi.h>

#include <cstdlib>
#include <limits>

#include "cluster/ranks.h"
#include "util/error.h"

namespace nt {

namespace {

bool g_mpi = false;

bool started_by_mpi_launcher() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMIX_RANK") != nullptr;
}

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) throw Error(std::string("MPI: ") + what + " failed");
}

}  // namespace

RankSession::RankSession(int& argc, char**& argv) {
  if (!started_by_mpi_launcher()) return;
  g_mpi = MPI_Init(&argc, &argv) == MPI_SUCCESS;  // Open MPI aborts on failure by default
}

RankSession::~RankSession() {
  if (g_mpi) MPI_Finalize();
  g_mpi = false;
}

int rank_index() {
  int r = 0;
  if (g_mpi) MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int rank_count() {
  int n = 1;
  if (g_mpi) MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

std::vector<std::string> gather_to_rank0(const std::string& bytes) {
  if (rank_count() == 1) return {bytes};
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max()))
    throw Error("MPI: a rank's state exceeds 2 GiB (use more ranks)");
  const int n = rank_count(), me = rank_index();
  int size = static_cast<int>(bytes.size());
  std::vector<int> sizes(static_cast<size_t>(n)), offsets(static_cast<size_t>(n));
  check(MPI_Gather(&size, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Gather");
  long total = 0;
  for (int r = 0; r < n; ++r) {
    offsets[static_cast<size_t>(r)] = static_cast<int>(total);
    total += sizes[static_cast<size_t>(r)];
  }
  if (me == 0 && total > std::numeric_limits<int>::max()) throw Error("MPI: the gathered states exceed 2 GiB");
  std::string all(me == 0 ? static_cast<size_t>(total) : 0, '\0');
  check(MPI_Gatherv(bytes.data(), size, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE, 0,
                    MPI_COMM_WORLD),
        "MPI_Gatherv");
  if (me != 0) return {};
  std::vector<std::string> out;
  for (int r = 0; r < n; ++r)
    out.push_back(all.substr(static_cast<size_t>(offsets[static_cast<size_t>(r)]), static_cast<size_t>(sizes[static_cast<size_t>(r)])));
  return out;
}

void abort_ranks(int code) {
  if (g_mpi && rank_count() > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

}  // namespace nt
