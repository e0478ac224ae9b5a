#pragma once
// A small persistent thread pool for the compute kernels (reduced-precision matrix products).
// The caller takes part in the work, so a pool of size N has N - 1 worker threads. Workers spin
// briefly after each job (the forward pass calls in again a few microseconds later), then sleep.
// The caller waits only for the work to be done, never for a worker that is asleep or was
// descheduled before it took any (on a busy machine that would cost a scheduler time slice).
//
// The process-wide pool (thread_pool()) has set_thread_count() threads, by default
// std::thread::hardware_concurrency(); the CLI sets it from --threads, next to OpenBLAS's count.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace nt {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Calls fn(begin, end) over [0, n) in ranges of at most `grain` items, handed out to the caller
  // and the workers as they come free (dynamic scheduling); returns when every range is done. An
  // exception thrown by fn is rethrown here (the first one; the other ranges still run). While a
  // parallel_for is in flight, another one (nested, or from another thread) runs inline on its
  // caller's thread. n must be below 2^31.
  void parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn);

 private:
  // One job's parameters. Two slots, used by alternate jobs, so a worker that wakes late and reads
  // the slot of a job that has ended never sees it rewritten while it could still claim work from
  // it (see run_ranges).
  struct Slot {
    std::atomic<const std::function<void(size_t, size_t)>*> fn{nullptr};
    std::atomic<uint32_t> n{0}, grain{1};
    std::atomic<uint32_t> done{0};  // items finished
  };

  void worker_loop();
  void run_ranges();

  std::vector<std::thread> workers_;
  std::mutex busy_;  // held by the caller of the parallel_for in flight
  Slot slots_[2];
  // (job << 32) | first item not yet handed out. Ranges are claimed by compare-and-swap, so a
  // worker only ever claims items of the job whose parameters it read.
  std::atomic<uint64_t> ticket_{0};
  std::atomic<uint32_t> wake_{0};  // bumped once per job; idle workers wait for it to change
  std::atomic<bool> stop_{false};
  std::mutex error_mutex_;
  std::exception_ptr error_;
};

// The process-wide pool, created on first use.
ThreadPool& thread_pool();
// Sets the size of the process-wide pool (1 = everything on the calling thread). Call it before
// the pool is used or between uses, never while a parallel_for is running.
void set_thread_count(int threads);
int thread_count();

}  // namespace nt
