#include "store/internal/page_source.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <utility>

#include "fmt/format.h"
#include "store/internal/page_format.h"

namespace locrit::store_internal {
namespace {

constexpr uint32_t kWalMagicLittleEndian = 0x377f0682;  // Checksum words read little-endian.
constexpr uint32_t kWalMagicBigEndian = 0x377f0683;     // ... or big-endian.
constexpr uint32_t kWalFormatVersion = 3007000;
constexpr size_t kWalHeaderSize = 32;
constexpr size_t kWalFrameHeaderSize = 24;

// Adds `data` to the running WAL checksum (§4.2): pairs of 32-bit words, in the byte order the
// WAL magic chose. REQUIRES: data.size() % 8 == 0.
void WalChecksum(Bytes data, bool big_endian, uint32_t* s0, uint32_t* s1) {
  for (size_t i = 0; i + 8 <= data.size(); i += 8) {
    const uint32_t x0 = big_endian ? Get32(&data[i]) : Get32LittleEndian(&data[i]);
    const uint32_t x1 = big_endian ? Get32(&data[i + 4]) : Get32LittleEndian(&data[i + 4]);
    *s0 += x0 + *s1;
    *s1 += x1 + *s0;
  }
}


}  // namespace

// --- ReadOnlyFile ---

ReadOnlyFile::ReadOnlyFile(ReadOnlyFile&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), size_(other.size_), path_(std::move(other.path_)) {}

ReadOnlyFile& ReadOnlyFile::operator=(ReadOnlyFile&& other) noexcept {
  if (this != &other) {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    size_ = other.size_;
    path_ = std::move(other.path_);
  }
  return *this;
}

ReadOnlyFile::~ReadOnlyFile() { Close(); }

void ReadOnlyFile::Close() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

Result<ReadOnlyFile> ReadOnlyFile::Open(const std::string& path) {
  ReadOnlyFile file;
  file.path_ = path;
  file.fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (file.fd_ < 0) {
    const int error = errno;
    std::string message = fmt::format("{}: cannot open: {}", path, std::strerror(error));
    if (error == ENOENT) return NotFoundError(std::move(message));
    return IoError(std::move(message));
  }
  struct stat st {};
  if (::fstat(file.fd_, &st) != 0) {
    return IoError(fmt::format("{}: cannot stat: {}", path, std::strerror(errno)));
  }
  file.size_ = st.st_size > 0 ? static_cast<uint64_t>(st.st_size) : 0;
  return file;
}

Result<size_t> ReadOnlyFile::ReadAt(uint64_t offset, std::span<uint8_t> out) const {
  if (offset >= size_) return size_t{0};
  const size_t want = static_cast<size_t>(std::min<uint64_t>(out.size(), size_ - offset));
  size_t done = 0;
  while (done < want) {
    const ssize_t n =
        ::pread(fd_, out.data() + done, want - done, static_cast<off_t>(offset + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return IoError(
          fmt::format("{}: read at {}: {}", path_, offset + done, std::strerror(errno)));
    }
    if (n == 0) break;  // Shrunk since open: what is gone reads as absent.
    done += static_cast<size_t>(n);
  }
  return done;
}

// --- WAL ---

Result<std::optional<WalImage>> ReadWal(const ReadOnlyFile& wal) {
  std::array<uint8_t, kWalHeaderSize> header{};
  ASSIGN_OR_RETURN(const size_t got, wal.ReadAt(0, header));
  if (got < kWalHeaderSize) return std::optional<WalImage>();
  const uint32_t magic = Get32(&header[0]);
  if (magic != kWalMagicLittleEndian && magic != kWalMagicBigEndian) {
    return std::optional<WalImage>();
  }
  const bool big_endian = magic == kWalMagicBigEndian;
  const uint32_t page_size = Get32(&header[8]);
  if (Get32(&header[4]) != kWalFormatVersion || !IsPageSize(page_size)) {
    return std::optional<WalImage>();
  }
  uint32_t s0 = 0;
  uint32_t s1 = 0;
  WalChecksum(Bytes(header).first(24), big_endian, &s0, &s1);
  if (s0 != Get32(&header[24]) || s1 != Get32(&header[28])) return std::optional<WalImage>();

  WalImage image;
  image.page_size = page_size;
  // Frames of the transaction being read; they count only once its commit frame is seen.
  std::vector<std::pair<uint32_t, uint64_t>> pending;
  int64_t pending_frames = 0;
  std::vector<uint8_t> frame(kWalFrameHeaderSize + page_size);
  for (uint64_t offset = kWalHeaderSize; offset + frame.size() <= wal.size();
       offset += frame.size()) {
    ASSIGN_OR_RETURN(const size_t n, wal.ReadAt(offset, frame));
    if (n < frame.size()) break;
    const uint32_t page = Get32(&frame[0]);
    const uint32_t commit_size = Get32(&frame[4]);
    // Salts copied from the header tie a frame to this generation of the log: frames left over
    // from before the last checkpoint restart have different salts.
    if (page == 0 || page > kMaxPageNumber || std::memcmp(&frame[8], &header[16], 8) != 0) break;
    WalChecksum(Bytes(frame).first(8), big_endian, &s0, &s1);
    WalChecksum(Bytes(frame).subspan(kWalFrameHeaderSize), big_endian, &s0, &s1);
    if (s0 != Get32(&frame[16]) || s1 != Get32(&frame[20])) break;
    pending.emplace_back(page, offset + kWalFrameHeaderSize);
    ++pending_frames;
    if (commit_size != 0) {
      for (const auto& [p, at] : pending) {
        image.page_offset[p] = at;
        image.max_page = std::max(image.max_page, p);
      }
      pending.clear();
      image.frames += pending_frames;
      pending_frames = 0;
      image.db_pages = commit_size;
    }
  }
  if (image.frames == 0) return std::optional<WalImage>();
  return std::optional<WalImage>(std::move(image));
}


// --- PageSource ---

PageSource::PageSource(const ReadOnlyFile* db, const ReadOnlyFile* wal, const WalImage* image,
                       uint32_t page_size, int64_t max_pages)
    : db_(db), wal_(wal), image_(image), page_size_(page_size) {
  const uint64_t file_pages = (db_->size() + page_size_ - 1) / page_size_;
  uint64_t count = file_pages;
  if (image_ != nullptr) {
    // The commit frame says how big the database is; pages beyond what exists read as absent.
    count = std::min<uint64_t>(image_->db_pages, std::max<uint64_t>(file_pages, image_->max_page));
  }
  page_count_ = static_cast<uint32_t>(std::min<uint64_t>(count, kMaxPageNumber));
  uint64_t budget = static_cast<uint64_t>(std::max<int64_t>(max_pages, 0));
  dense_pages_ = static_cast<uint32_t>(std::min<uint64_t>({file_pages, page_count_, budget}));
  capped_ = dense_pages_ < std::min<uint64_t>(file_pages, page_count_);
  budget -= dense_pages_;
  if (image_ != nullptr) {
    for (const auto& [page, offset] : image_->page_offset) {
      if (page > dense_pages_ && page <= page_count_) sparse_pages_.push_back(page);
    }
    std::sort(sparse_pages_.begin(), sparse_pages_.end());
    if (sparse_pages_.size() > budget) {
      sparse_pages_.resize(static_cast<size_t>(budget));
      capped_ = true;
    }
  }
}

bool PageSource::Exists(uint32_t page) const {
  if (page >= 1 && page <= dense_pages_) return true;
  return std::binary_search(sparse_pages_.begin(), sparse_pages_.end(), page);
}

bool PageSource::FromWal(uint32_t page) const {
  return image_ != nullptr && image_->page_offset.count(page) != 0;
}

Status PageSource::Read(uint32_t page, std::vector<uint8_t>* out) const {
  out->resize(page_size_);
  size_t n = 0;
  if (Exists(page)) {
    const auto in_wal = image_ != nullptr ? image_->page_offset.find(page)
                                          : std::unordered_map<uint32_t, uint64_t>::const_iterator();
    if (image_ != nullptr && in_wal != image_->page_offset.end()) {
      ASSIGN_OR_RETURN(n, wal_->ReadAt(in_wal->second, *out));
    } else {
      ASSIGN_OR_RETURN(n, db_->ReadAt(uint64_t{page - 1} * page_size_, *out));
    }
  }
  out->resize(n);
  return Status::Ok();
}

}  // namespace locrit::store_internal
