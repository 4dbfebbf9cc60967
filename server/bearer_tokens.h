// The bearer tokens `auth:` names (config/grinqh.yaml), and the check both APIs make of a
// request's `authorization` value. Knows nothing of gRPC or HTTP: grpc_listener.cc and
// http_security.cc ask it.
//
// Tokens are compared in constant time: each is kept as its SHA-256 digest, the presented
// token is hashed too, and every digest is compared with CRYPTO_memcmp, all of them, so
// neither a token's length nor how much of it matched shows in the time taken.
#pragma once

#include <array>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/config.h"

namespace grinqh {

class BearerTokens {
 public:
  // Reads auth.tokens_file and the variable auth.tokens_env names. INVALID_ARGUMENT naming
  // the key when a source cannot be read or together they hold no token.
  static absl::StatusOr<BearerTokens> Load(const AuthSection& auth);
  // From tokens in memory (tests); empty tokens are skipped.
  static BearerTokens FromTokens(const std::vector<std::string_view>& tokens);

  // Whether `authorization` is "Bearer <one of the tokens>" (the scheme in any case, RFC 7235).
  bool Accepts(std::string_view authorization) const;
  size_t size() const { return digests_.size(); }

 private:
  using Digest = std::array<unsigned char, 32>;
  static Digest Hash(std::string_view token);
  void Add(std::string_view token);

  std::vector<Digest> digests_;
};

}  // namespace grinqh
