// ParallelFor: runs fn(task, worker) for task in [0, tasks) on `threads`
// threads (the calling thread is worker 0), handing out tasks one at a time.
// Which worker runs which task depends on timing; callers keep per-worker
// state and merge it by keys, so results never depend on it. The first
// exception thrown by a task is rethrown after every thread has stopped.
#ifndef CARECARD_ENGINE_PARALLEL_H_
#define CARECARD_ENGINE_PARALLEL_H_

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace carecard {

template <typename Fn>
void ParallelFor(int threads, size_t tasks, Fn&& fn) {
  const int n = static_cast<int>(std::max<size_t>(1, std::min<size_t>(static_cast<size_t>(std::max(threads, 1)), tasks)));
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&](int worker) {
    for (;;) {
      if (failed.load(std::memory_order_relaxed)) return;
      const size_t task = next.fetch_add(1);
      if (task >= tasks) return;
      try {
        fn(task, worker);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (!error) error = std::current_exception();
        failed = true;
        return;
      }
    }
  };
  std::vector<std::thread> pool;
  for (int w = 1; w < n; ++w) pool.emplace_back(run, w);
  run(0);
  for (auto& t : pool) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace carecard

#endif  // CARECARD_ENGINE_PARALLEL_H_
