// The OpenAI-compatible HTTP API, beside gRPC on the same model and scheduler, served by
// cpp-httplib on its own port (config `http:`):
//   POST /v1/completions, POST /v1/chat/completions   (stream: server-sent events)
//   GET  /v1/models, /v1/models/{id}
//   GET  /health   200 while the process runs (liveness)
//   GET  /ready    200 once the model is loaded, 503 while loading and while draining
// It listens before the model loads, so probes see "loading" rather than a refused connection.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/serving/model.h"
#include "engine/serving/scheduler.h"
#include "server/config.h"
#include "server/http_listener.h"
#include "server/http_security.h"
#include "server/serving_metrics.h"

namespace grinqh {

// What the completion routes serve from; everything must outlive OpenAiHttpServer::Stop().
struct OpenAiServing {
  Model& model;
  Scheduler& scheduler;
  const ServerConfig& config;
  ServingMetrics& metrics;
  std::function<float()> auto_bits;  // what the autoscaled tier decodes at now
  std::string model_name;            // the model's name in the API
  int64_t created = 0;               // Unix seconds the model was loaded, for /v1/models
  std::atomic<uint64_t> next_completion{1};
};

class OpenAiHttpServer {
 public:
  // Binds host:port (0 picks a free one) with `threads` handler threads, and answers /health
  // at once and /ready and the API with 503 until Serve. Bodies over `max_body_bytes` get 413.
  // Over TLS, and asking every route but /health and /ready for a bearer token (401 in
  // OpenAI's error shape), as `security` says. UNAVAILABLE naming host:port when it cannot bind.
  static absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> Start(const std::string& host, int port, int threads,
                                                                 size_t max_body_bytes,
                                                                 const HttpSecurity& security = {});
  ~OpenAiHttpServer();  // Stop()
  OpenAiHttpServer(const OpenAiHttpServer&) = delete;
  OpenAiHttpServer& operator=(const OpenAiHttpServer&) = delete;

  int port() const { return listener_->port(); }

  // The model is loaded: /ready turns 200 and the API serves from `serving`.
  void Serve(OpenAiServing& serving) { serving_ = &serving; }
  // Shutting down: /ready turns 503 and new completions get 503; running ones go on.
  void Drain() { draining_ = true; }
  // Stops listening, ends open connections, and joins the thread. Idempotent.
  void Stop() {
    if (listener_) listener_->Stop();
  }

 private:
  OpenAiHttpServer() = default;
  void AddRoutes(httplib::Server& http, size_t max_body_bytes);

  std::unique_ptr<HttpListener> listener_;
  std::atomic<OpenAiServing*> serving_{nullptr};
  std::atomic<bool> draining_{false};
};

}  // namespace grinqh
