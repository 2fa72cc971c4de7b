// ThreadPool: a fixed set of threads running posted tasks in FIFO order. The memory manager's work
// pool, where every blocking SQLite call runs (never on a network thread).
//
// Thread-safe. Shutdown() (also run by the destructor) stops accepting, runs what is queued, then
// joins. A task must not block waiting for another task of the same pool.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace locrit {

class ThreadPool {
 public:
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `task`. Returns false (and drops it) once shutdown has begun.
  bool Post(std::function<void()> task);

  // Tasks queued and not yet started.
  size_t QueueDepth() const;

  void Shutdown();

 private:
  void Loop();

  mutable std::mutex mu_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;  // GUARDED_BY(mu_)
  bool stopping_ = false;                    // GUARDED_BY(mu_)
  std::vector<std::thread> threads_;         // Written only by the constructor and Shutdown().
};

}  // namespace locrit
