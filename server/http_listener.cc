#include "server/http_listener.h"

#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "httplib.h"

namespace grinqh {
namespace {

// How long a client may leave one read or write of its connection waiting.
constexpr auto kIoTimeout = std::chrono::seconds(5);

int LocalPort(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  if (getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return -1;
  if (address.ss_family == AF_INET) return ntohs(reinterpret_cast<sockaddr_in*>(&address)->sin_port);
  if (address.ss_family == AF_INET6) return ntohs(reinterpret_cast<sockaddr_in6*>(&address)->sin6_port);
  return -1;
}

// Shuts down (without closing: httplib closes its own descriptors) every accepted connection
// of this process on `port`, so that workers blocked reading or writing them return at once.
// httplib 0.11 does not hand out its connections' sockets, so they are found in /proc.
void ShutDownConnections(int port) {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return;
  while (const dirent* entry = readdir(dir)) {
    const int fd = std::atoi(entry->d_name);
    if (fd <= 2 || fd == dirfd(dir)) continue;
    int listening = 0;
    socklen_t size = sizeof(listening);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) != 0 || listening) continue;
    if (LocalPort(fd) == port) shutdown(fd, SHUT_RDWR);
  }
  closedir(dir);
}

}  // namespace

HttpListener::HttpListener(std::unique_ptr<httplib::Server> server) : http_(std::move(server)) {}

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Start(std::unique_ptr<httplib::Server> server,
                                                                  const char* what, const char* port_key,
                                                                  const std::string& host, int port, int threads) {
  std::unique_ptr<HttpListener> listener(new HttpListener(std::move(server)));
  httplib::Server& http = *listener->http_;
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  http.set_read_timeout(kIoTimeout);
  http.set_write_timeout(kIoTimeout);
  http.set_socket_options([](socket_t socket) {
    int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  listener->port_ = port == 0 ? http.bind_to_any_port(host) : (http.bind_to_port(host, port) ? port : -1);
  if (listener->port_ < 0) {
    return absl::UnavailableError(
        absl::StrCat(what, " cannot listen on ", host, ":", port, " (", port_key, "): is another server using it?"));
  }
  listener->thread_ = std::thread([raw = listener.get()] {
    raw->http_->listen_after_bind();
    raw->listen_returned_ = true;
  });
  // httplib's stop() does nothing until the listening loop runs: wait for it, so that an
  // early Stop() cannot hang in join.
  while (!http.is_running() && !listener->listen_returned_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return listener;
}

HttpListener::~HttpListener() { Stop(); }

void HttpListener::Stop() {
  if (!thread_.joinable()) return;
  http_->stop();
  // The listening loop, once stopped, waits for its workers: end their connections until it
  // returns (again, for any accepted just before the stop).
  while (!listen_returned_) {
    ShutDownConnections(port_);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  thread_.join();
}

}  // namespace grinqh
