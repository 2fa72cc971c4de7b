#include "tests/support/serve_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>
#include <utility>

extern char** environ;

namespace locrit::testing {

ServeProcess::~ServeProcess() {
  if (pid_ > 0) Stop(SIGKILL);
}

std::string ServeProcess::Start(const std::string& binary, const std::string& data_dir,
                                const std::string& log_path,
                                const std::vector<std::string>& extra_args) {
  log_path_ = log_path;
  std::vector<std::string> args = {binary, "serve", "--listen", "127.0.0.1:0", "--data", data_dir};
  args.insert(args.end(), extra_args.begin(), extra_args.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::error_code ignored;
  std::filesystem::remove(std::filesystem::path(data_dir) / "locrit.addr", ignored);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 2, log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  const int rc = posix_spawn(&pid_, binary.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    pid_ = -1;
    return "cannot spawn " + binary;
  }
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  const std::filesystem::path addr = std::filesystem::path(data_dir) / "locrit.addr";
  while (std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(addr);
    std::string line;
    if (in && std::getline(in, line) && !line.empty()) {
      address_ = line;
      port_ = static_cast<uint16_t>(std::stoi(line.substr(line.rfind(':') + 1)));
      return "";
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return "locrit serve exited early: " + Log();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return "locrit serve did not write its address: " + Log();
}

int ServeProcess::Stop(int sig) {
  if (pid_ <= 0) return -1;
  kill(pid_, sig);
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

std::string ServeProcess::Log() const {
  std::ifstream in(log_path_);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

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
