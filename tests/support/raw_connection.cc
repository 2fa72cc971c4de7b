#include "tests/support/raw_connection.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <string_view>
#include <thread>
#include <utility>

namespace locrit::testing {

uint64_t RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

RawConnection::RawConnection(uint16_t port) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd_ < 0) return;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) Close();
}

RawConnection::~RawConnection() { Close(); }

RawConnection::RawConnection(RawConnection&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), pending_(std::move(other.pending_)) {}

void RawConnection::Close() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

bool RawConnection::Send(std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

namespace {

// One poll + recv: >0 bytes appended, 0 closed, -1 timeout, -2 error (reset: closed too).
int ReadSome(int fd, std::string& out, std::chrono::milliseconds wait) {
  pollfd p{fd, POLLIN, 0};
  const int ready = poll(&p, 1, static_cast<int>(wait.count()));
  if (ready == 0) return -1;
  if (ready < 0) return errno == EINTR ? -1 : -2;
  char buf[16384];
  const ssize_t n = recv(fd, buf, sizeof(buf), 0);
  if (n > 0) {
    out.append(buf, static_cast<size_t>(n));
    return static_cast<int>(n);
  }
  return n == 0 ? 0 : -2;
}

}  // namespace

std::optional<std::string> RawConnection::ReadUntilClosed(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out = std::move(pending_);
  pending_.clear();
  while (std::chrono::steady_clock::now() < deadline) {
    const int n = ReadSome(fd_, out, std::chrono::milliseconds(50));
    if (n == 0 || n == -2) return out;
  }
  pending_ = std::move(out);
  return std::nullopt;
}

std::optional<std::string> RawConnection::ReadResponse(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    const size_t head_end = pending_.find("\r\n\r\n");
    if (head_end != std::string::npos) {
      const std::string head = pending_.substr(0, head_end);
      size_t length = 0;
      std::string lower;
      for (char c : head) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      const size_t at = lower.find("content-length:");
      if (at != std::string::npos) length = std::stoul(head.substr(at + 15));
      if (pending_.size() >= head_end + 4 + length) {
        std::string response = pending_.substr(0, head_end + 4 + length);
        pending_.erase(0, head_end + 4 + length);
        return response;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    const int n = ReadSome(fd_, pending_, std::chrono::milliseconds(50));
    if (n == 0 || n == -2) return std::nullopt;
  }
}

bool RawConnection::PeerClosed(std::chrono::milliseconds wait) {
  const int n = ReadSome(fd_, pending_, wait);
  return n == 0 || n == -2;
}

}  // namespace locrit::testing
