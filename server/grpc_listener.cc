#include "server/grpc_listener.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/security/auth_metadata_processor.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "engine/base/file_util.h"

namespace grinqh {
namespace {

constexpr char kHealthPathPrefix[] = "/grpc.health.v1.Health/";  // probes carry no token

class BearerTokenProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit BearerTokenProcessor(std::shared_ptr<const BearerTokens> tokens) : tokens_(std::move(tokens)) {}

  // A hash and a few compares: cheap enough for the transport's thread.
  bool IsBlocking() const override { return false; }

  grpc::Status Process(const InputMetadata& metadata, grpc::AuthContext*, OutputMetadata* consumed,
                       OutputMetadata*) override {
    const auto path = metadata.find(":path");
    if (path != metadata.end() && View(path->second).starts_with(kHealthPathPrefix)) return grpc::Status::OK;
    const auto authorization = metadata.find("authorization");
    if (authorization == metadata.end() || !tokens_->Accepts(View(authorization->second))) {
      return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                          "a valid bearer token is required (metadata authorization: Bearer <token>)");
    }
    // Consumed: the handlers (and anything they log) never see the token.
    consumed->emplace(std::string(View(authorization->first)), std::string(View(authorization->second)));
    return grpc::Status::OK;
  }

 private:
  static std::string_view View(grpc::string_ref s) { return {s.data(), s.size()}; }
  std::shared_ptr<const BearerTokens> tokens_;
};

absl::StatusOr<std::string> ReadPem(const char* key, const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat(key, ": ", text.status().message()));
  return text;
}

// The reflection plugin registers itself for every ServerBuilder once its library is loaded;
// this option takes it back out of one builder.
class WithoutReflection final : public grpc::ServerBuilderOption {
 public:
  void UpdateArguments(grpc::ChannelArguments*) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    std::erase_if(*plugins, [](const std::unique_ptr<grpc::ServerBuilderPlugin>& plugin) {
      return dynamic_cast<grpc::reflection::ProtoServerReflectionPlugin*>(plugin.get()) != nullptr;
    });
  }
};

int Milliseconds(double seconds) { return static_cast<int>(std::lround(seconds * 1000)); }

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcServerCredentials(
    const ServerConfig& config, std::shared_ptr<const BearerTokens> tokens) {
  std::shared_ptr<grpc::ServerCredentials> credentials;
  if (config.tls.enabled()) {
    const bool mutual = !config.tls.client_ca_file.empty();
    grpc::SslServerCredentialsOptions options(mutual ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                                     : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    auto key = ReadPem("tls.key_file", config.tls.key_file);
    if (!key.ok()) return key.status();
    auto cert = ReadPem("tls.cert_file", config.tls.cert_file);
    if (!cert.ok()) return cert.status();
    options.pem_key_cert_pairs.push_back({*key, *cert});
    if (mutual) {
      auto ca = ReadPem("tls.client_ca_file", config.tls.client_ca_file);
      if (!ca.ok()) return ca.status();
      options.pem_root_certs = *ca;
    }
    credentials = grpc::SslServerCredentials(options);
  } else if (tokens != nullptr) {
    credentials = grpc::experimental::LocalServerCredentials(LOCAL_TCP);
  } else {
    return grpc::InsecureServerCredentials();
  }
  if (tokens != nullptr) credentials->SetAuthMetadataProcessor(std::make_shared<BearerTokenProcessor>(tokens));
  return credentials;
}

void ApplyServerSection(const ServerSection& server, int64_t largest_request_bytes, grpc::ServerBuilder& builder) {
  if (server.reflection) {
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  } else {
    builder.SetOption(std::make_unique<WithoutReflection>());
  }
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, server.max_concurrent_streams);
  builder.SetMaxReceiveMessageSize(
      static_cast<int>(std::min<int64_t>({largest_request_bytes, int64_t{server.max_message_bytes}, INT_MAX})));
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxSendMessageSize(server.max_message_bytes);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS, Milliseconds(server.keepalive_time_seconds));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, Milliseconds(server.keepalive_timeout_seconds));
  // Idle connections are pinged too, so a client that vanished between calls is noticed.
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  if (server.max_connection_age_seconds > 0) {
    builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS, Milliseconds(server.max_connection_age_seconds));
  }
}

}  // namespace grinqh
