// BearerTokens: the Authorization value's form, and tokens from a file and the environment.
#include "server/bearer_tokens.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace grinqh {
namespace {

using ::testing::HasSubstr;

TEST(BearerTokens, AcceptsOnlyBearerAndOneOfTheTokens) {
  const BearerTokens tokens = BearerTokens::FromTokens({"alpha-1", "beta-22", ""});
  EXPECT_EQ(tokens.size(), 2u);  // the empty one is skipped
  EXPECT_TRUE(tokens.Accepts("Bearer alpha-1"));
  EXPECT_TRUE(tokens.Accepts("bearer beta-22"));  // the scheme in any case
  EXPECT_TRUE(tokens.Accepts("BEARER  beta-22 "));
  EXPECT_FALSE(tokens.Accepts("Bearer alpha-2"));
  EXPECT_FALSE(tokens.Accepts("Bearer alpha-1x"));  // no prefix match
  EXPECT_FALSE(tokens.Accepts("Bearer alpha-"));
  EXPECT_FALSE(tokens.Accepts("alpha-1"));  // no scheme
  EXPECT_FALSE(tokens.Accepts("Basic alpha-1"));
  EXPECT_FALSE(tokens.Accepts("Bearer "));
  EXPECT_FALSE(tokens.Accepts(""));
}

TEST(BearerTokens, LoadsAFileAndAVariable) {
  const std::filesystem::path file = std::filesystem::path(testing::TempDir()) / "bearer_tokens_test_tokens";
  std::ofstream(file) << "# the API's tokens\nfrom-file\n\n  spaced  \n";
  setenv("BEARER_TOKENS_TEST", "env-1, env-2", 1);
  absl::StatusOr<BearerTokens> tokens = BearerTokens::Load({file.string(), "BEARER_TOKENS_TEST"});
  ASSERT_TRUE(tokens.ok()) << tokens.status();
  EXPECT_EQ(tokens->size(), 4u);
  for (const char* token : {"from-file", "spaced", "env-1", "env-2"}) {
    EXPECT_TRUE(tokens->Accepts(std::string("Bearer ") + token)) << token;
  }
  EXPECT_FALSE(tokens->Accepts("Bearer # the API's tokens"));  // comments are not tokens

  std::ofstream(file) << "# nothing but a comment\n\n";
  EXPECT_THAT(std::string(BearerTokens::Load({file.string(), ""}).status().message()),
              HasSubstr("auth.tokens_file: no token found"));
  EXPECT_THAT(std::string(BearerTokens::Load({"/no/such/tokens", ""}).status().message()),
              HasSubstr("auth.tokens_file: "));
  unsetenv("BEARER_TOKENS_TEST");
  EXPECT_THAT(std::string(BearerTokens::Load({"", "BEARER_TOKENS_TEST"}).status().message()),
              HasSubstr("auth.tokens_env: the environment variable BEARER_TOKENS_TEST is not set"));
  std::filesystem::remove(file);
}

}  // namespace
}  // namespace grinqh
