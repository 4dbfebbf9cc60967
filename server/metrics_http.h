// Serves prometheus-cpp metrics over HTTP for Prometheus: `GET /metrics` returns the text
// exposition format (metrics::ExposeText), anything else 404. cpp-httplib runs it on a thread
// of its own: the HTTP library the server already uses, rather than prometheus-cpp's civetweb
// exposer, because one HTTP stack is simpler to harden than two.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/collectable.h"
#include "server/http_listener.h"
#include "server/http_security.h"

namespace grinqh {

class MetricsHttpServer {
 public:
  // Binds host:port (port 0 picks a free one) and starts serving what `collectable` collects;
  // it must outlive the server. Over TLS and asking for a bearer token as `security` says.
  // UNAVAILABLE naming host:port when it cannot bind.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(const prometheus::Collectable& collectable,
                                                                  const std::string& host, int port,
                                                                  const HttpSecurity& security = {});
  ~MetricsHttpServer();  // Stop()
  MetricsHttpServer(const MetricsHttpServer&) = delete;
  MetricsHttpServer& operator=(const MetricsHttpServer&) = delete;

  // The bound port.
  int port() const { return listener_->port(); }

  // Stops listening, ends open connections, and joins the thread. Idempotent.
  void Stop() { listener_->Stop(); }

 private:
  explicit MetricsHttpServer(std::unique_ptr<HttpListener> listener) : listener_(std::move(listener)) {}

  std::unique_ptr<HttpListener> listener_;
};

}  // namespace grinqh
