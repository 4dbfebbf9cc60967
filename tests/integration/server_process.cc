#include "tests/integration/server_process.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <optional>
#include <utility>

#include "gtest/gtest.h"

namespace grinqh::testing {
namespace {

// The number right after the first `prefix` found from `from` in `text`, and where it ends.
std::optional<std::pair<int, size_t>> NumberAfter(const std::string& text, const std::string& prefix, size_t from) {
  const size_t at = text.find(prefix, from);
  if (at == std::string::npos) return std::nullopt;
  size_t end = at + prefix.size();
  int value = 0;
  while (end < text.size() && std::isdigit(static_cast<unsigned char>(text[end]))) value = value * 10 + (text[end++] - '0');
  if (end == at + prefix.size()) return std::nullopt;
  return std::make_pair(value, end);
}

}  // namespace

ServerProcess::ServerProcess(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {GRINQH_BINARY, "serve", "--host", "127.0.0.1", "--port", "0", "--metrics-port", "0",
                                   "--http-port", "0"};
  argv.insert(argv.end(), args.begin(), args.end());
  int pipe_fds[2];
  if (pipe(pipe_fds) != 0) {
    ADD_FAILURE() << "pipe failed";
    return;
  }
  pid_ = fork();
  if (pid_ == 0) {
    dup2(pipe_fds[1], STDERR_FILENO);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
    std::vector<char*> c_args;
    for (std::string& a : argv) c_args.push_back(a.data());
    c_args.push_back(nullptr);
    execv(c_args[0], c_args.data());
    _exit(127);
  }
  close(pipe_fds[1]);
  stderr_fd_ = pipe_fds[0];
  fcntl(stderr_fd_, F_SETFL, O_NONBLOCK);

  // "... on 127.0.0.1:PORT, metrics on HOST:PORT/metrics"
  const double timeout_s = 60 * TestTimeScale();
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < deadline) {
    ReadAvailable(0.1);
    if (const auto grpc = NumberAfter(log_, " on 127.0.0.1:", 0)) {
      const size_t metrics_at = log_.find("metrics on ", grpc->second);
      const size_t colon = metrics_at == std::string::npos ? metrics_at : log_.find(':', metrics_at);
      const auto metrics = colon == std::string::npos ? std::nullopt : NumberAfter(log_, ":", colon);
      if (metrics && log_.compare(metrics->second, 8, "/metrics") == 0) {  // the whole line is in
        grpc_port_ = grpc->first;
        metrics_port_ = metrics->first;
        return;
      }
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      ReadAvailable(0.1);
      ADD_FAILURE() << "grinqh serve exited before listening:\n" << log_;
      return;
    }
  }
  ADD_FAILURE() << "grinqh serve did not start listening within " << timeout_s << " s:\n" << log_;
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (stderr_fd_ >= 0) close(stderr_fd_);
}

void ServerProcess::ReadAvailable(double timeout_seconds) {
  pollfd fd{stderr_fd_, POLLIN, 0};
  if (poll(&fd, 1, static_cast<int>(timeout_seconds * 1000)) <= 0) return;
  char buffer[4096];
  for (ssize_t n; (n = read(stderr_fd_, buffer, sizeof buffer)) > 0;) log_.append(buffer, static_cast<size_t>(n));
}

std::string ServerProcess::log() {
  ReadAvailable(0);
  return log_;
}

int ServerProcess::WaitForExit(double timeout_seconds) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_seconds);
  while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
    ReadAvailable(0.05);
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      ReadAvailable(0);
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
  return -1;
}

}  // namespace grinqh::testing
