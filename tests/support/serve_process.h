// ServeProcess: the real `locrit serve` binary on 127.0.0.1:0 with a data directory, its stderr
// in a log file, for end-to-end tests and benchmarks; and RawConnection, a plain blocking TCP
// client for what HTTP libraries will not do (slow headers, idle connections, exact bytes).
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

class ServeProcess {
 public:
  ServeProcess() = default;
  ~ServeProcess();  // SIGKILL when still running.
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  // Starts `binary serve --listen 127.0.0.1:0 --data data_dir <extra_args>` and waits (at most
  // 30 s) for <data_dir>/locrit.addr. Empty on success, else why not (with the log).
  std::string Start(const std::string& binary, const std::string& data_dir,
                    const std::string& log_path, const std::vector<std::string>& extra_args = {});
  // Sends `sig` and waits; the exit code, or -1 when killed by a signal.
  int Stop(int sig);

  bool running() const { return pid_ > 0; }
  const std::string& address() const { return address_; }  // "127.0.0.1:PORT"
  uint16_t port() const { return port_; }
  std::string Log() const;

 private:
  pid_t pid_ = -1;
  std::string address_;
  uint16_t port_ = 0;
  std::string log_path_;
};

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
