// Open MPI ranks. MPI is initialised only when mpirun started the process (Open MPI sets
// OMPI_COMM_WORLD_SIZE; PMIx launchers such as srun set PMIX_RANK), so a plain `neurontrace`
// run never pays for, or prints anything from, MPI's start-up.
#include <mpi.h>

#include <algorithm>
#include <cstdlib>

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

void send_to_rank0(const std::string& bytes, const std::function<void(int, std::string&&)>& receive) {
  constexpr size_t kPiece = size_t{1} << 30;
  const int me = rank_index();
  if (me != 0) {
    const unsigned long long size = bytes.size();
    check(MPI_Send(&size, 1, MPI_UNSIGNED_LONG_LONG, 0, 0, MPI_COMM_WORLD), "MPI_Send");
    for (size_t at = 0; at < bytes.size(); at += kPiece)
      check(MPI_Send(bytes.data() + at, static_cast<int>(std::min(kPiece, bytes.size() - at)), MPI_BYTE, 0, 0,
                     MPI_COMM_WORLD),
            "MPI_Send");
    return;
  }
  for (int r = 1; r < rank_count(); ++r) {
    unsigned long long size = 0;
    check(MPI_Recv(&size, 1, MPI_UNSIGNED_LONG_LONG, r, 0, MPI_COMM_WORLD, MPI_STATUS_IGNORE), "MPI_Recv");
    std::string got(size, '\0');
    for (size_t at = 0; at < got.size(); at += kPiece)
      check(MPI_Recv(got.data() + at, static_cast<int>(std::min(kPiece, got.size() - at)), MPI_BYTE, r, 0,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE),
            "MPI_Recv");
    receive(r, std::move(got));
  }
}

void abort_ranks(int code) {
  if (g_mpi && rank_count() > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

}  // namespace nt
