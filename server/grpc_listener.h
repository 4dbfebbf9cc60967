// How `grinqh serve` sets up its gRPC listener from the config: credentials (`tls:`), the
// bearer-token check (`auth:`), and the channel arguments and reflection of `server:`.
//
// The token check is an AuthMetadataProcessor on the listener's credentials: gRPC core runs it
// on every call's metadata before any service sees the call, so it covers every RPC of every
// service registered (the API, reflection, any added later) with one check and no per-handler
// code; only grpc.health.v1.Health is let through, by path. A processor needs secure
// credentials: TLS, or, with TLS off, gRPC's local credentials, which encrypt nothing and take
// connections from this machine only (CheckTokensStayPrivate holds the listener to loopback then).
#pragma once

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>

#include <memory>

#include "absl/status/statusor.h"
#include "server/bearer_tokens.h"
#include "server/config.h"

namespace grinqh {

// Plaintext, TLS or mutual TLS as `config.tls` says, asking for one of `tokens` when it is not
// null. INVALID_ARGUMENT naming the key when a PEM file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> GrpcServerCredentials(
    const ServerConfig& config, std::shared_ptr<const BearerTokens> tokens);

// Message size, concurrent streams, keepalive and connection age from `server:`, and server
// reflection when `server.reflection` is on. Received messages are capped at the smaller of
// server.max_message_bytes and `largest_request_bytes` (what the request limits allow), so a
// message larger than any valid request is refused before it is parsed. The port is not
// shared (no SO_REUSEPORT): a second server on it fails to start.
void ApplyServerSection(const ServerSection& server, int64_t largest_request_bytes, grpc::ServerBuilder& builder);

}  // namespace grinqh
