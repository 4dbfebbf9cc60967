// What the HTTP listeners (the OpenAI-compatible API, /metrics) share for `tls:` and `auth:`:
// a cpp-httplib server that speaks TLS (optionally asking for client certificates), and the
// bearer-token check run before any route.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "server/bearer_tokens.h"

namespace httplib {
class Server;
struct Response;
}  // namespace httplib

namespace grinqh {

struct HttpSecurity {
  std::string cert_file;       // PEM; empty: plaintext
  std::string key_file;        // PEM, with cert_file
  std::string client_ca_file;  // PEM; set: clients must present a certificate it signed
  std::shared_ptr<const BearerTokens> tokens;  // null: no token asked
  bool tls() const { return !cert_file.empty(); }
};

// A plain httplib::Server, or its SSLServer with the certificate loaded. INVALID_ARGUMENT
// naming the files when OpenSSL cannot load them.
absl::StatusOr<std::unique_ptr<httplib::Server>> NewHttpServer(const HttpSecurity& security);
// What NewHttpServer would say of the files, without a server (`serve --check-config`).
absl::Status CheckHttpSecurity(const HttpSecurity& security);

// Routes for which `is_public` is false answer 401, with `WWW-Authenticate: Bearer` and the
// body `refuse` writes, unless the request carries `Authorization: Bearer <token>` with one of
// the tokens. Nothing is asked when `security.tokens` is null.
void RequireBearerToken(httplib::Server& http, const HttpSecurity& security,
                        std::function<bool(const std::string& path)> is_public,
                        std::function<void(httplib::Response&)> refuse);

}  // namespace grinqh
