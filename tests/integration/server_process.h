// Starts the real `grinqh serve` on loopback for a test, and stops it.
//
// The server is told to pick free ports (port 0) and announces them on stderr; the test
// reads that line. Everything the server writes to stderr is kept for failure messages.
#pragma once

#include <signal.h>
#include <sys/types.h>

#include <cstdlib>
#include <string>
#include <vector>

namespace grinqh::testing {

// How much longer timing-bound waits may take: sanitizer builds run several times slower
// (scripts/test.sh --tsan sets GRINQH_TEST_TIME_SCALE).
inline double TestTimeScale() {
  const char* scale = std::getenv("GRINQH_TEST_TIME_SCALE");
  return scale != nullptr && std::atof(scale) > 0 ? std::atof(scale) : 1.0;
}

class ServerProcess {
 public:
  // Runs `grinqh serve --host 127.0.0.1 --port 0 --metrics-port 0 --http-port 0 <args>` and waits until it
  // listens (or fails the current test on exit / timeout).
  explicit ServerProcess(const std::vector<std::string>& args);
  ~ServerProcess();  // SIGKILL if still running
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  bool ok() const { return grpc_port_ > 0; }
  std::string address() const { return "127.0.0.1:" + std::to_string(grpc_port_); }
  int metrics_port() const { return metrics_port_; }

  void Signal(int signal_number) const { kill(pid_, signal_number); }
  // Waits for the process to exit; its exit status (or 128 + signal), -1 on timeout.
  int WaitForExit(double timeout_seconds);
  // Everything the server wrote to stderr so far.
  std::string log();

 private:
  void ReadAvailable(double timeout_seconds);

  pid_t pid_ = -1;
  int stderr_fd_ = -1;
  int grpc_port_ = 0;
  int metrics_port_ = 0;
  std::string log_;
};

}  // namespace grinqh::testing
