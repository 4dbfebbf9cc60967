#include "server/openai_http.h"

#include <sys/socket.h>

#include <chrono>

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "server/generate_request.h"
#include "server/openai_completions.h"
#include "server/openai_response.h"

namespace grinqh {
namespace {

using json = nlohmann::json;

// A prompt may be 4 MiB of text (generate_request.cc); JSON escaping can grow it.
constexpr size_t kMaxBodyBytes = 16 << 20;

void RespondJson(httplib::Response& response, int status, const json& body) {
  response.status = status;
  response.set_content(DumpJson(body), "application/json");
}

json ModelCard(const OpenAiServing& serving) {
  return {{"id", serving.model_name},
          {"object", "model"},
          {"created", serving.created},
          {"owned_by", "grinqh"},
          {"max_model_len", serving.model.config().max_position_embeddings}};
}

OpenAiError HttpError(int status, std::string message, std::string type = "invalid_request_error") {
  OpenAiError error;
  error.http_status = status;
  error.message = std::move(message);
  error.type = std::move(type);
  return error;
}

std::string ErrorText(int status) {
  switch (status) {
    case 404: return "no such route (see /v1/models, /v1/completions, /v1/chat/completions)";
    case 405: return "method not allowed";
    case 413: return absl::StrCat("the body is larger than ", kMaxBodyBytes, " bytes");
    default: return absl::StrCat("HTTP status ", status);
  }
}

}  // namespace

OpenAiHttpServer::OpenAiHttpServer(std::unique_ptr<httplib::Server> http) : http_(std::move(http)) {}

absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> OpenAiHttpServer::Start(const std::string& host, int port,
                                                                          int threads, const HttpSecurity& security) {
  absl::StatusOr<std::unique_ptr<httplib::Server>> http_server = NewHttpServer(security);
  if (!http_server.ok()) return http_server.status();
  std::unique_ptr<OpenAiHttpServer> server(new OpenAiHttpServer(std::move(*http_server)));
  httplib::Server& http = *server->http_;
  // A streaming completion holds its handler thread until it ends.
  http.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
  // Clients keep connections alive between requests; after Stop an idle one is closed within
  // this long, which bounds how much it adds to the drain.
  http.set_keep_alive_timeout(2);
  http.set_payload_max_length(kMaxBodyBytes);
  // As the metrics server: SO_REUSEADDR only, so a second server cannot share the port.
  http.set_socket_options([](socket_t socket) {
    int yes = 1;
    setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server->AddRoutes();
  // Probes carry no token: liveness and readiness stay open.
  RequireBearerToken(
      http, security, [](const std::string& path) { return path == "/health" || path == "/ready"; },
      [](httplib::Response& response) {
        // As OpenAI answers a wrong API key.
        OpenAiError error = HttpError(401, "a valid bearer token is required (Authorization: Bearer <token>)");
        error.code = "invalid_api_key";
        RespondWithError(error, response);
      });

  server->port_ = port == 0 ? http.bind_to_any_port(host) : (http.bind_to_port(host, port) ? port : -1);
  if (server->port_ < 0) {
    return absl::UnavailableError(absl::StrCat("HTTP API server cannot listen on ", host, ":", port));
  }
  server->thread_ = std::thread([raw = server.get()] {
    raw->http_->listen_after_bind();
    raw->listen_returned_ = true;
  });
  // httplib's stop() does nothing until the listening loop runs: wait for it, so that an
  // early Stop() cannot hang in join.
  while (!http.is_running() && !server->listen_returned_) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return server;
}

void OpenAiHttpServer::AddRoutes() {
  httplib::Server& http = *http_;
  http.Get("/health", [](const httplib::Request&, httplib::Response& response) {
    RespondJson(response, 200, {{"status", "ok"}});
  });
  http.Get("/ready", [this](const httplib::Request&, httplib::Response& response) {
    if (draining_) return RespondJson(response, 503, {{"status", "draining"}});
    if (serving_ == nullptr) return RespondJson(response, 503, {{"status", "loading"}});
    RespondJson(response, 200, {{"status", "ready"}});
  });
  // The API's routes answer 503 while the model loads and once draining has begun.
  const auto serving = [this](httplib::Response& response) -> OpenAiServing* {
    OpenAiServing* s = serving_;
    if (s == nullptr || draining_) {
      RespondWithError(HttpError(503, s == nullptr ? "the model is still loading" : "the server is shutting down",
                                 "service_unavailable"),
                       response);
      return nullptr;
    }
    return s;
  };
  http.Get("/v1/models", [serving](const httplib::Request&, httplib::Response& response) {
    if (OpenAiServing* s = serving(response)) RespondJson(response, 200, {{"object", "list"}, {"data", {ModelCard(*s)}}});
  });
  http.Get(R"(/v1/models/(.+))", [serving](const httplib::Request& request, httplib::Response& response) {
    OpenAiServing* s = serving(response);
    if (s == nullptr) return;
    if (absl::Status found = CheckServedModel("model", request.matches[1], s->model_name); !found.ok()) {
      return RespondWithError(ToOpenAiError(found), response);
    }
    RespondJson(response, 200, ModelCard(*s));
  });
  for (const auto& [path, endpoint] : {std::pair{"/v1/completions", OpenAiEndpoint::kCompletions},
                                       std::pair{"/v1/chat/completions", OpenAiEndpoint::kChatCompletions}}) {
    http.Post(path, [serving, endpoint = endpoint](const httplib::Request& request, httplib::Response& response) {
      if (OpenAiServing* s = serving(response)) HandleCompletion(*s, endpoint, request, response);
    });
  }
  // Unknown paths and methods, and oversized bodies, in OpenAI's error shape too.
  http.set_error_handler([](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty()) return;
    RespondWithError(
        HttpError(response.status, absl::StrCat(request.method, " ", request.path, ": ", ErrorText(response.status))),
        response);
  });
}

OpenAiHttpServer::~OpenAiHttpServer() { Stop(); }

void OpenAiHttpServer::Stop() {
  if (!thread_.joinable()) return;
  http_->stop();
  thread_.join();
}

}  // namespace grinqh
