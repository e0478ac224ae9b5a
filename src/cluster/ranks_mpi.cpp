// Open MPI ranks. MPI is initialised only when mpirun started the process (Open MPI sets
// OMPI_COMM_WORLD_SIZE; PMIx launchers such as srun set PMIX_RANK), so a plain `neurontrace`
// run never pays for, or prints anything from, MPI's start-up.
#include <mpi.h>

#include <algorithm>
#include <climits>
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

namespace {

MergeElements g_merge = nullptr;  // the merge of the reduction in progress (MPI_User_function has no closure)

void merge_op(void* in, void* inout, int* len, MPI_Datatype*) { g_merge(in, inout, static_cast<size_t>(*len)); }

}  // namespace

void reduce_to_rank0(void* data, size_t count, size_t element_bytes, MergeElements merge) {
  if (rank_count() == 1) return;
  if (count > INT_MAX || element_bytes > INT_MAX) throw Error("MPI: too many elements to reduce in one call");
  MPI_Datatype element;
  check(MPI_Type_contiguous(static_cast<int>(element_bytes), MPI_BYTE, &element), "MPI_Type_contiguous");
  check(MPI_Type_commit(&element), "MPI_Type_commit");
  MPI_Op op;
  check(MPI_Op_create(merge_op, 0, &op), "MPI_Op_create");  // 0: not commutative, rank order kept
  g_merge = merge;
  const bool root = rank_index() == 0;
  const int rc = MPI_Reduce(root ? MPI_IN_PLACE : data, root ? data : nullptr, static_cast<int>(count), element, op, 0,
                            MPI_COMM_WORLD);
  g_merge = nullptr;
  MPI_Op_free(&op);
  MPI_Type_free(&element);
  check(rc, "MPI_Reduce");
}

std::vector<std::string> gather_to_rank0(const std::string& bytes) {
  if (bytes.size() > INT_MAX) throw Error("MPI: more than 2 GiB to gather");
  const int mine = static_cast<int>(bytes.size()), n = rank_count();
  const bool root = rank_index() == 0;
  std::vector<int> sizes(root ? static_cast<size_t>(n) : 0), offsets(sizes.size() + 1, 0);
  check(MPI_Gather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Gather");
  long long total = 0;
  for (size_t r = 0; r < sizes.size(); ++r) {
    total += sizes[r];
    if (total > INT_MAX) throw Error("MPI: more than 2 GiB to gather");
    offsets[r + 1] = static_cast<int>(total);
  }
  std::string all(static_cast<size_t>(total), '\0');
  check(MPI_Gatherv(bytes.data(), mine, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE, 0, MPI_COMM_WORLD),
        "MPI_Gatherv");
  std::vector<std::string> out;
  for (size_t r = 0; r < sizes.size(); ++r) out.push_back(all.substr(static_cast<size_t>(offsets[r]), static_cast<size_t>(sizes[r])));
  return out;
}

void abort_ranks(int code) {
  if (g_mpi && rank_count() > 1) MPI_Abort(MPI_COMM_WORLD, code);
}

}  // namespace nt
