// Runs an httplib::Server on a thread of its own, set up the same way for each HTTP endpoint
// of the process (/metrics and the OpenAI-compatible API):
// - it binds without SO_REUSEPORT (httplib's default), so a second process cannot share the
//   port and its requests; SO_REUSEADDR still allows a restart while old connections linger;
// - reads and writes time out, so a client that stalls frees its worker;
// - Stop() never waits on a client: it shuts down the connections still open, so one that
//   trickles a request a byte at a time cannot hold up the process' exit.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace grinqh {

class HttpListener {
 public:
  // Binds host:port (0 picks a free port) and serves `server` (its routes added) with
  // `threads` workers. UNAVAILABLE naming `what`, host:port and `port_key` when it cannot bind.
  static absl::StatusOr<std::unique_ptr<HttpListener>> Start(std::unique_ptr<httplib::Server> server,
                                                             const char* what, const char* port_key,
                                                             const std::string& host, int port, int threads);
  ~HttpListener();  // Stop()
  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  int port() const { return port_; }
  httplib::Server& http() { return *http_; }

  // Stops listening, ends the connections still open (handlers that are running finish
  // writing to a closed socket) and joins the thread. Idempotent.
  void Stop();

 private:
  explicit HttpListener(std::unique_ptr<httplib::Server> server);

  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  std::atomic<bool> listen_returned_{false};
  int port_ = 0;
};

}  // namespace grinqh
