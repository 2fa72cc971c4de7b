#include "tests/support/locrit_process.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <string_view>
#include <thread>

extern char** environ;

namespace locrit::testing {
namespace {

std::vector<std::string> Environment(const std::map<std::string, std::string>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string_view(*e).rfind("LOCRIT_", 0) != 0) env.emplace_back(*e);
  }
  for (const auto& [key, value] : extra) env.push_back(key + "=" + value);
  return env;
}

std::vector<char*> NullTerminated(std::vector<std::string>& strings) {
  std::vector<char*> out;
  for (std::string& s : strings) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

int ExitCodeOf(int wait_status) {
  return WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : -1;
}

}  // namespace

std::string ReadWholeFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

pid_t Spawn(const std::string& binary, const LocritCommand& command) {
  std::vector<std::string> args = {binary};
  args.insert(args.end(), command.args.begin(), command.args.end());
  std::vector<std::string> env = Environment(command.env);
  std::vector<char*> argv = NullTerminated(args);
  std::vector<char*> envp = NullTerminated(env);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!command.cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, command.cwd.c_str());
  constexpr int kFlags = O_WRONLY | O_CREAT | O_TRUNC;
  if (!command.stdout_file.empty()) {
    posix_spawn_file_actions_addopen(&actions, 1, command.stdout_file.c_str(), kFlags, 0644);
  }
  if (!command.stderr_file.empty()) {
    posix_spawn_file_actions_addopen(&actions, 2, command.stderr_file.c_str(), kFlags, 0644);
  }
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  EXPECT_EQ(rc, 0) << "cannot start " << binary;
  return rc == 0 ? pid : -1;
}

CommandResult RunToEnd(const std::string& binary, LocritCommand command) {
  const std::filesystem::path dir =
      command.cwd.empty() ? std::filesystem::current_path() : command.cwd;
  command.stdout_file = dir / ".locrit.out";
  command.stderr_file = dir / ".locrit.err";
  CommandResult result;
  const pid_t pid = Spawn(binary, command);
  if (pid <= 0) return result;
  int status = 0;
  waitpid(pid, &status, 0);
  result.exit_code = ExitCodeOf(status);
  result.out = ReadWholeFile(command.stdout_file);
  result.err = ReadWholeFile(command.stderr_file);
  return result;
}

LocritServer::LocritServer(std::string binary, std::filesystem::path data,
                           std::filesystem::path log, std::vector<std::string> extra_args,
                           std::map<std::string, std::string> env)
    : LocritServer(binary,
                   [&] {
                     LocritCommand command;
                     command.args = {"serve", "--listen", "127.0.0.1:0", "--data", data.string()};
                     command.args.insert(command.args.end(), extra_args.begin(),
                                         extra_args.end());
                     command.env = std::move(env);
                     command.stderr_file = log;
                     return command;
                   }(),
                   data) {}

LocritServer::LocritServer(const std::string& binary, const LocritCommand& command,
                           std::filesystem::path data)
    : data_(std::move(data)), log_(command.stderr_file) {
  pid_ = Spawn(binary, command);
}

LocritServer::~LocritServer() {
  if (pid_ > 0) {
    EXPECT_EQ(Stop(SIGTERM), 0) << Log();
  }
}

std::string LocritServer::WaitReady() {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
  const std::filesystem::path addr = data_ / "locrit.addr";
  while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
    std::ifstream in(addr);
    std::string line;
    if (in && std::getline(in, line) && !line.empty()) {
      return "http://127.0.0.1:" + line.substr(line.rfind(':') + 1);
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      exit_code_ = ExitCodeOf(status);
      return "";
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return "";
}

int LocritServer::Stop(int signal) {
  Signal(signal);
  return Wait();
}

void LocritServer::Signal(int signal) {
  if (pid_ > 0) kill(pid_, signal);
}

int LocritServer::Wait() {
  if (pid_ <= 0) return exit_code_;
  int status = 0;
  waitpid(pid_, &status, 0);
  pid_ = -1;
  exit_code_ = ExitCodeOf(status);
  return exit_code_;
}

}  // namespace locrit::testing
