#include "server/http_security.h"

#include "absl/strings/str_cat.h"
#include "httplib.h"

namespace grinqh {

absl::StatusOr<std::unique_ptr<httplib::Server>> NewHttpServer(const HttpSecurity& security) {
  if (!security.tls()) return std::make_unique<httplib::Server>();
  auto server = std::make_unique<httplib::SSLServer>(
      security.cert_file.c_str(), security.key_file.c_str(),
      security.client_ca_file.empty() ? nullptr : security.client_ca_file.c_str());
  if (!server->is_valid()) {
    return absl::InvalidArgumentError(absl::StrCat("tls: cannot load the certificate ", security.cert_file, ", key ",
                                                   security.key_file,
                                                   security.client_ca_file.empty() ? "" : " or client CA ",
                                                   security.client_ca_file));
  }
  return server;
}

absl::Status CheckHttpSecurity(const HttpSecurity& security) { return NewHttpServer(security).status(); }

void RequireBearerToken(httplib::Server& http, const HttpSecurity& security,
                        std::function<bool(const std::string& path)> is_public,
                        std::function<void(httplib::Response&)> refuse) {
  if (security.tokens == nullptr) return;
  http.set_pre_routing_handler([tokens = security.tokens, is_public = std::move(is_public),
                                refuse = std::move(refuse)](const httplib::Request& request,
                                                            httplib::Response& response) {
    if (is_public(request.path) || tokens->Accepts(request.get_header_value("Authorization"))) {
      return httplib::Server::HandlerResponse::Unhandled;  // on to the routes
    }
    response.status = 401;
    response.set_header("WWW-Authenticate", "Bearer");
    // Refused before the body is read: the connection cannot carry another request.
    response.set_header("Connection", "close");
    refuse(response);
    return httplib::Server::HandlerResponse::Handled;
  });
}

}  // namespace grinqh
