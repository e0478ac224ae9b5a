#include "util/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <memory>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define NT_CPU_RELAX() _mm_pause()
#else
#define NT_CPU_RELAX() std::this_thread::yield()
#endif

namespace nt {

namespace {

// How long a thread spins for the next job (workers) or for the job's end (caller) before it
// sleeps. Decode calls into the pool every few microseconds; a futex wake-up costs about as much.
constexpr auto kSpin = std::chrono::microseconds(50);

// Spins until pred() holds or kSpin has passed; returns pred().
template <class Pred>
bool spin_until(Pred pred) {
  const auto t0 = std::chrono::steady_clock::now();
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      NT_CPU_RELAX();
    }
    if (std::chrono::steady_clock::now() - t0 > kSpin) return pred();
  }
}

}  // namespace

ThreadPool::ThreadPool(int threads) {
  const int workers = std::max(1, threads) - 1;
  workers_.reserve(static_cast<size_t>(workers));
  for (int i = 0; i < workers; ++i) workers_.emplace_back([this] { worker_loop(); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  wake_.fetch_add(1, std::memory_order_acq_rel);
  wake_.notify_all();
  for (auto& t : workers_) t.join();
}

// Claims and runs ranges of the current job until it has none left (or a newer job replaced it).
void ThreadPool::run_ranges() {
  uint64_t t = ticket_.load(std::memory_order_acquire);
  for (;;) {
    const uint32_t job = static_cast<uint32_t>(t >> 32), begin = static_cast<uint32_t>(t);
    Slot& slot = slots_[job & 1];
    const uint32_t n = slot.n.load(std::memory_order_relaxed), grain = slot.grain.load(std::memory_order_relaxed);
    const auto* fn = slot.fn.load(std::memory_order_relaxed);
    if (begin >= n) return;
    const uint32_t end = std::min(n, begin + grain);
    // Succeeds only while `job` is still the current job, so n, grain and fn (read above) are its
    // own, and fn is alive: the job cannot end before this range is marked done.
    if (!ticket_.compare_exchange_weak(t, (uint64_t{job} << 32) | end, std::memory_order_acq_rel,
                                       std::memory_order_acquire))
      continue;
    try {
      (*fn)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex_);
      if (!error_) error_ = std::current_exception();
    }
    if (slot.done.fetch_add(end - begin, std::memory_order_acq_rel) + (end - begin) == n) slot.done.notify_all();
    t = ticket_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker_loop() {
  // Not wake_.load(): the first job may be published before this thread gets to run.
  uint32_t seen = 0;
  for (;;) {
    if (!spin_until([&] { return wake_.load(std::memory_order_acquire) != seen; }))
      while (wake_.load(std::memory_order_acquire) == seen) wake_.wait(seen, std::memory_order_acquire);
    seen = wake_.load(std::memory_order_acquire);
    if (stop_.load(std::memory_order_acquire)) return;
    run_ranges();
  }
}

void ThreadPool::parallel_for(size_t n, size_t grain, const std::function<void(size_t, size_t)>& fn) {
  if (n == 0) return;
  grain = std::clamp<size_t>(grain, 1, n);
  std::unique_lock<std::mutex> lock(busy_, std::try_to_lock);
  if (workers_.empty() || n <= grain || n >= (size_t{1} << 31) || !lock.owns_lock()) {
    for (size_t b = 0; b < n; b += grain) fn(b, std::min(n, b + grain));
    return;
  }
  const uint32_t job = static_cast<uint32_t>(ticket_.load(std::memory_order_relaxed) >> 32) + 1;
  Slot& slot = slots_[job & 1];
  slot.fn.store(&fn, std::memory_order_relaxed);
  slot.n.store(static_cast<uint32_t>(n), std::memory_order_relaxed);
  slot.grain.store(static_cast<uint32_t>(grain), std::memory_order_relaxed);
  slot.done.store(0, std::memory_order_relaxed);
  error_ = nullptr;
  ticket_.store(uint64_t{job} << 32, std::memory_order_release);  // publishes the job
  wake_.fetch_add(1, std::memory_order_acq_rel);
  wake_.notify_all();
  run_ranges();
  const uint32_t total = static_cast<uint32_t>(n);
  if (!spin_until([&] { return slot.done.load(std::memory_order_acquire) == total; }))
    for (uint32_t d; (d = slot.done.load(std::memory_order_acquire)) != total;)
      slot.done.wait(d, std::memory_order_acquire);
  if (error_) std::rethrow_exception(error_);
}

namespace {

std::mutex g_pool_mutex;
std::unique_ptr<ThreadPool> g_pool;
int g_threads = 0;  // 0: not set, use hardware_concurrency

int default_threads() { return static_cast<int>(std::max(1u, std::thread::hardware_concurrency())); }

}  // namespace

ThreadPool& thread_pool() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (!g_pool) g_pool = std::make_unique<ThreadPool>(g_threads > 0 ? g_threads : default_threads());
  return *g_pool;
}

void set_thread_count(int threads) {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  g_threads = std::max(1, threads);
  if (g_pool && g_pool->size() != g_threads) g_pool.reset();
}

int thread_count() {
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  return g_pool ? g_pool->size() : (g_threads > 0 ? g_threads : default_threads());
}

}  // namespace nt
