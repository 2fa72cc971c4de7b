// A real `locrit` process for the end-to-end tests: `serve` on 127.0.0.1:0 with a temporary data
// directory (the port is read back from <data>/locrit.addr), or a one-shot CLI command. The
// environment is the test's own without any LOCRIT_* variable, plus what the test sets, so the
// machine's settings never leak in.
#pragma once

#include <sys/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace locrit::testing {

struct LocritCommand {
  std::vector<std::string> args;  // After the binary's name: {"serve", "--listen", ...}.
  std::filesystem::path cwd;
  std::map<std::string, std::string> env;  // Added to the environment.
  std::filesystem::path stdout_file;       // Empty: inherited.
  std::filesystem::path stderr_file;       // Empty: inherited.
};

// Starts the binary; -1 (and a failed expectation) when it cannot be spawned.
pid_t Spawn(const std::string& binary, const LocritCommand& command);

// Runs a command to its end: its exit code (-1 when killed by a signal), stdout and stderr.
struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
CommandResult RunToEnd(const std::string& binary, LocritCommand command);

std::string ReadWholeFile(const std::filesystem::path& path);

// A running `locrit serve`, stopped with SIGTERM by Stop() or by the destructor (which expects
// exit code 0).
class LocritServer {
 public:
  // `locrit serve --listen 127.0.0.1:0 --data <data> extra...`, its stderr to `log`.
  LocritServer(std::string binary, std::filesystem::path data, std::filesystem::path log,
               std::vector<std::string> extra_args = {},
               std::map<std::string, std::string> env = {});
  // `locrit <command.args...>` exactly as given (settings from a file, the environment or
  // relative paths), whose data directory — where locrit.addr appears — is `data`. Its stderr
  // goes to command.stderr_file, which Log() reads.
  LocritServer(const std::string& binary, const LocritCommand& command,
               std::filesystem::path data);
  ~LocritServer();
  LocritServer(const LocritServer&) = delete;
  LocritServer& operator=(const LocritServer&) = delete;

  // Waits (bounded) until the server has written its address: "http://127.0.0.1:<port>", or ""
  // when it exited first (see exit_code()) or never wrote it.
  std::string WaitReady();
  // Sends `signal` and waits: the exit code, -1 when killed by a signal.
  int Stop(int signal);
  // Sends `signal` without waiting (the test goes on while the server drains).
  void Signal(int signal);
  // Waits for the process to end: its exit code, -1 when killed by a signal.
  int Wait();
  bool running() const { return pid_ > 0; }
  int exit_code() const { return exit_code_; }
  pid_t pid() const { return pid_; }
  std::string Log() const { return ReadWholeFile(log_); }

 private:
  std::filesystem::path data_;
  std::filesystem::path log_;
  pid_t pid_ = -1;
  int exit_code_ = -1;
};

}  // namespace locrit::testing
