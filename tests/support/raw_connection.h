// RawConnection: a plain blocking TCP client for what HTTP libraries will not do (slow headers,
// idle connections, exact bytes), and the descriptor limit that thousands of them need.
//
// Thread-compatible.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace locrit::testing {

// Raises this process's soft limit on open descriptors to the hard one; returns the new soft
// limit.
uint64_t RaiseOpenFileLimit();

class RawConnection {
 public:
  // Connects (blocking) to 127.0.0.1:port; check ok().
  explicit RawConnection(uint16_t port);
  ~RawConnection();
  RawConnection(RawConnection&& other) noexcept;
  RawConnection& operator=(RawConnection&&) = delete;
  RawConnection(const RawConnection&) = delete;

  bool ok() const { return fd_ >= 0; }
  // False when the peer is gone (EPIPE, reset).
  bool Send(std::string_view bytes);
  // Reads until the peer closes or `timeout` passes (then nullopt); what was read when closed.
  std::optional<std::string> ReadUntilClosed(std::chrono::milliseconds timeout);
  // Reads one whole HTTP/1.1 response with Content-Length (or until close) within `timeout`;
  // nullopt when nothing complete arrived.
  std::optional<std::string> ReadResponse(std::chrono::milliseconds timeout);
  // True when the peer closed (or reset) the connection, checked without blocking beyond
  // `wait`.
  bool PeerClosed(std::chrono::milliseconds wait);
  void Close();

 private:
  int fd_ = -1;
  std::string pending_;
};

}  // namespace locrit::testing
