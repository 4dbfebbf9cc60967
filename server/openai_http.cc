#include "server/openai_http.h"

#include "absl/strings/str_cat.h"
#include "engine/base/status_macros.h"
#include "engine/base/unicode.h"
#include "httplib.h"
#include "server/generate_request.h"
#include "server/openai_completions.h"
#include "server/openai_response.h"

namespace grinqh {
namespace {

using json = nlohmann::json;

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

std::string ErrorText(int status, size_t max_body_bytes) {
  switch (status) {
    case 404: return "no such route (see /v1/models, /v1/completions, /v1/chat/completions)";
    case 405: return "method not allowed";
    case 413: return absl::StrCat("the body is larger than ", max_body_bytes, " bytes (see limits.max_prompt_bytes)");
    default: return absl::StrCat("HTTP status ", status);
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> OpenAiHttpServer::Start(const std::string& host, int port,
                                                                          int threads, size_t max_body_bytes,
                                                                          const HttpSecurity& security) {
  std::unique_ptr<OpenAiHttpServer> server(new OpenAiHttpServer());
  GRINQH_ASSIGN_OR_RETURN(std::unique_ptr<httplib::Server> http, NewHttpServer(security));
  // Clients keep connections alive between requests; an idle one is closed after this long.
  http->set_keep_alive_timeout(2);
  http->set_payload_max_length(max_body_bytes);
  server->AddRoutes(*http, max_body_bytes);
  // Probes carry no token: liveness and readiness stay open.
  RequireBearerToken(
      *http, security, [](const std::string& path) { return path == "/health" || path == "/ready"; },
      [](httplib::Response& response) {
        // As OpenAI answers a wrong API key.
        OpenAiError error = HttpError(401, "a valid bearer token is required (Authorization: Bearer <token>)");
        error.code = "invalid_api_key";
        RespondWithError(error, response);
      });
  // A streaming completion holds its handler thread until it ends.
  GRINQH_ASSIGN_OR_RETURN(server->listener_,
                          HttpListener::Start(std::move(http), "HTTP API server", "http.port", host, port, threads));
  return server;
}

void OpenAiHttpServer::AddRoutes(httplib::Server& http, size_t max_body_bytes) {
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
  http.set_error_handler([max_body_bytes](const httplib::Request& request, httplib::Response& response) {
    if (!response.body.empty()) return;
    RespondWithError(
        HttpError(response.status, absl::StrCat(request.method, " ", QuoteInput(request.path), ": ", ErrorText(response.status, max_body_bytes))),
        response);
  });
}

OpenAiHttpServer::~OpenAiHttpServer() { Stop(); }

}  // namespace grinqh
