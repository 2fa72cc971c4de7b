// The pages of a SQLite database as of its last valid commit: the database file, overlaid with
// the committed frames of its WAL (https://www.sqlite.org/fileformat2.html §4). Only checksummed
// WAL frames up to the last commit frame count; every size that the WAL or the file claims is
// clamped to what the files really hold, so hostile input cannot make a reader allocate or loop
// over pages that do not exist. Used by the page scanner (page_scanner.h).
#pragma once

#include <cstdint>
#include <algorithm>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "base/status.h"

namespace locrit::store_internal {

// A read-only file descriptor and the file's size at open. Move-only; thread-compatible.
class ReadOnlyFile {
 public:
  ReadOnlyFile() = default;
  ReadOnlyFile(ReadOnlyFile&& other) noexcept;
  ReadOnlyFile& operator=(ReadOnlyFile&& other) noexcept;
  ~ReadOnlyFile();

  // Errors: not_found if `path` does not exist, io_error if it cannot be opened.
  static Result<ReadOnlyFile> Open(const std::string& path);

  uint64_t size() const { return size_; }

  // Reads up to out.size() bytes at `offset`; returns how many there were (fewer at the end of
  // the file, as measured at open).
  Result<size_t> ReadAt(uint64_t offset, std::span<uint8_t> out) const;

 private:
  void Close();

  int fd_ = -1;
  uint64_t size_ = 0;
  std::string path_;
};

// The committed content of a WAL: for each page, where its newest committed image is.
struct WalImage {
  uint32_t page_size = 0;
  uint32_t db_pages = 0;  // "Database size after commit" of the last valid commit frame.
  uint32_t max_page = 0;  // Highest page number with an image.
  int64_t frames = 0;     // Valid frames up to and including the last commit frame.
  std::unordered_map<uint32_t, uint64_t> page_offset;  // Page -> offset of its image in the WAL.
};

// Reads the committed frames of a WAL. Returns nullopt when there is no usable WAL (bad header,
// or no valid commit frame): then the database file alone is the database.
Result<std::optional<WalImage>> ReadWal(const ReadOnlyFile& wal);

// Page images of the database as of the last valid WAL commit: the WAL's image when it has
// one, the file's otherwise. Thread-compatible; does not own the files or the image.
//
// Page numbers run to what the last commit frame states (or the file's size without a WAL), but
// only pages with an image exist: the file's, and beyond the file's end those the WAL holds. A
// damaged file can be short and its WAL still hold high page numbers, and a checksummed frame
// can name any page number, so what a reader allocates or visits is sized by the pages that
// exist (at most `max_pages` of them), never by the numbers.
class PageSource {
 public:
  // `wal` and `image` are both null or both set.
  PageSource(const ReadOnlyFile* db, const ReadOnlyFile* wal, const WalImage* image,
             uint32_t page_size, int64_t max_pages);

  uint32_t page_size() const { return page_size_; }
  // The highest page number of the database.
  uint32_t page_count() const { return page_count_; }
  // Pages 1..dense_pages() exist; beyond them, only sparse_pages() (ascending) do.
  uint32_t dense_pages() const { return dense_pages_; }
  const std::vector<uint32_t>& sparse_pages() const { return sparse_pages_; }
  int64_t existing_pages() const { return int64_t{dense_pages_} + int64_t(sparse_pages_.size()); }
  bool Exists(uint32_t page) const;
  // Whether more pages exist than `max_pages` let this source show.
  bool capped() const { return capped_; }
  bool FromWal(uint32_t page) const;

  // Fills *out with page `page`: page_size() bytes, fewer when the file ends inside the page,
  // none when the page does not exist.
  Status Read(uint32_t page, std::vector<uint8_t>* out) const;

 private:
  const ReadOnlyFile* db_;
  const ReadOnlyFile* wal_;
  const WalImage* image_;  // Null when no WAL applies.
  uint32_t page_size_;
  uint32_t page_count_ = 0;
  uint32_t dense_pages_ = 0;
  std::vector<uint32_t> sparse_pages_;
  bool capped_ = false;
};

}  // namespace locrit::store_internal
