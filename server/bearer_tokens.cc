#include "server/bearer_tokens.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/base/file_util.h"

namespace grinqh {
namespace {

// Debian's Abseil has a string_view of its own: these take and give std's.
std::string_view Trim(std::string_view text) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(absl::string_view(text.data(), text.size()));
  return {trimmed.data(), trimmed.size()};
}
std::vector<std::string_view> Split(std::string_view text, char separator) {
  std::vector<std::string_view> pieces;
  for (absl::string_view piece : absl::StrSplit(absl::string_view(text.data(), text.size()), separator)) {
    pieces.emplace_back(piece.data(), piece.size());
  }
  return pieces;
}

}  // namespace

BearerTokens::Digest BearerTokens::Hash(std::string_view token) {
  Digest digest;
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), digest.data());
  return digest;
}

void BearerTokens::Add(std::string_view token) {
  token = Trim(token);
  if (!token.empty()) digests_.push_back(Hash(token));
}

BearerTokens BearerTokens::FromTokens(const std::vector<std::string_view>& tokens) {
  BearerTokens result;
  for (std::string_view token : tokens) result.Add(token);
  return result;
}

absl::StatusOr<BearerTokens> BearerTokens::Load(const AuthSection& auth) {
  BearerTokens result;
  if (!auth.tokens_file.empty()) {
    absl::StatusOr<std::string> text = ReadFileToString(auth.tokens_file);
    if (!text.ok()) return absl::InvalidArgumentError(absl::StrCat("auth.tokens_file: ", text.status().message()));
    for (std::string_view line : Split(*text, '\n')) {
      if (!Trim(line).starts_with('#')) result.Add(line);
    }
  }
  if (!auth.tokens_env.empty()) {
    const char* value = std::getenv(auth.tokens_env.c_str());
    if (value == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("auth.tokens_env: the environment variable ", auth.tokens_env, " is not set"));
    }
    for (std::string_view token : Split(value, ',')) result.Add(token);
  }
  if (result.digests_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(auth.tokens_file.empty() ? "auth.tokens_env" : "auth.tokens_file",
                                                   ": no token found (an empty source would lock every client out)"));
  }
  return result;
}

bool BearerTokens::Accepts(std::string_view authorization) const {
  constexpr absl::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !absl::EqualsIgnoreCase(absl::string_view(authorization.data(), kScheme.size()), kScheme)) {
    return false;
  }
  const Digest presented = Hash(Trim(authorization.substr(kScheme.size())));
  bool match = false;
  for (const Digest& digest : digests_) {  // no early exit: every token costs the same
    match |= CRYPTO_memcmp(digest.data(), presented.data(), digest.size()) == 0;
  }
  return match;
}

}  // namespace grinqh
