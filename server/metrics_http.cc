#include "server/metrics_http.h"

#include "httplib.h"
#include "server/metrics.h"

namespace grinqh {
namespace {

// Workers enough that scrapes are answered while a few clients hold theirs with slow requests.
constexpr int kWorkers = 8;

}  // namespace

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    const prometheus::Collectable& collectable, const std::string& host, int port, const HttpSecurity& security) {
  absl::StatusOr<std::unique_ptr<httplib::Server>> made = NewHttpServer(security);
  if (!made.ok()) return made.status();
  std::unique_ptr<httplib::Server> http = *std::move(made);
  // One request per connection: a scraper does not hold a worker between scrapes.
  http->set_keep_alive_max_count(1);
  RequireBearerToken(
      *http, security, [](const std::string&) { return false; },
      [](httplib::Response& response) { response.set_content("a bearer token is required\n", "text/plain"); });
  http->Get("/metrics", [&collectable](const httplib::Request&, httplib::Response& response) {
    response.set_content(metrics::ExposeText({&collectable}), "text/plain; version=0.0.4; charset=utf-8");
  });
  absl::StatusOr<std::unique_ptr<HttpListener>> listener =
      HttpListener::Start(std::move(http), "metrics server", "metrics.port", host, port, kWorkers);
  if (!listener.ok()) return listener.status();
  return std::unique_ptr<MetricsHttpServer>(new MetricsHttpServer(*std::move(listener)));
}

MetricsHttpServer::~MetricsHttpServer() { Stop(); }

}  // namespace grinqh
