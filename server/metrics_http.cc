#include "server/metrics_http.h"

#include <sys/socket.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "server/metrics.h"

namespace grinqh {

MetricsHttpServer::MetricsHttpServer(std::unique_ptr<httplib::Server> http) : http_(std::move(http)) {}

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const prometheus::Collectable& collectable, const std::string& host, int port, const HttpSecurity& security) {
  absl::StatusOr<std::unique_ptr<httplib::Server>> http_server = NewHttpServer(security);
  if (!http_server.ok()) return http_server.status();
  std::unique_ptr<MetricsHttpServer> server(new MetricsHttpServer(std::move(*http_server)));
  httplib::Server& http = *server->http_;
  // Scrapes are rare and small: two workers, and one request per connection, so that Stop
  // never waits out an idle keep-alive connection.
  http.new_task_queue = [] { return new httplib::ThreadPool(2); };
  http.set_keep_alive_max_count(1);
  // httplib's default is SO_REUSEPORT, which would let a second server share the port (and
  // the scrapes); SO_REUSEADDR alone still allows a restart while old connections linger.
  http.set_socket_options([](socket_t socket) {
    int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  RequireBearerToken(
      http, security, [](const std::string&) { return false; },
      [](httplib::Response& response) { response.set_content("a bearer token is required\n", "text/plain"); });
  http.Get("/metrics", [&collectable](const httplib::Request&, httplib::Response& response) {
    response.set_content(metrics::ExposeText({&collectable}), "text/plain; version=0.0.4; charset=utf-8");
  });

  if (port == 0) {
    server->port_ = http.bind_to_any_port(host);
  } else {
    server->port_ = http.bind_to_port(host, port) ? port : -1;
  }
  if (server->port_ < 0) {
    return absl::UnavailableError(absl::StrCat("metrics server cannot listen on ", host, ":", port));
  }

  server->thread_ = std::thread([raw = server.get()] {
    raw->http_->listen_after_bind();
    raw->listen_returned_ = true;
  });
  // httplib's stop() does nothing until the listening loop runs, so wait for it here
  // rather than let an early Stop() hang in join.
  while (!http.is_running() && !server->listen_returned_) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return server;
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

void MetricsHttpServer::Stop() {
  if (!thread_.joinable()) return;
  http_->stop();
  thread_.join();
}

}  // namespace grinqh
