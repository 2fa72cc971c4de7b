// FileLock: an exclusive advisory lock (flock) on a file, held for the object's lifetime. The file
// records the holder's pid so that a refused caller can say who holds it.
//
// flock locks belong to an open file description: a second FileLock on the same path fails even
// within one process, which is what "opened exactly once" needs. Thread-compatible; move-only.
#pragma once

#include <string>

#include "base/status.h"

namespace locrit {

class FileLock {
 public:
  // Creates `path` when missing. failed_precondition naming the holder's pid when another open
  // file description holds the lock; io_error when the file cannot be opened.
  static Result<FileLock> Acquire(const std::string& path);

  FileLock(FileLock&& other) noexcept;
  FileLock& operator=(FileLock&& other) noexcept;
  FileLock(const FileLock&) = delete;
  FileLock& operator=(const FileLock&) = delete;
  ~FileLock();

  const std::string& path() const { return path_; }

 private:
  FileLock(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  void Release();

  int fd_ = -1;
  std::string path_;
};

}  // namespace locrit
