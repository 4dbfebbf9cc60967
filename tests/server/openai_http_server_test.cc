// OpenAiHttpServer's lifecycle without a model: it listens before the model loads (liveness
// yes, readiness and the API 503 "loading"), and draining turns readiness off again.
#include "server/openai_http.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"

namespace grinqh {
namespace {

using ::testing::HasSubstr;

TEST(OpenAiHttpServer, AnswersProbesWhileLoadingAndDraining) {
  absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> server = OpenAiHttpServer::Start("127.0.0.1", 0, 2, 1 << 20);
  ASSERT_TRUE(server.ok()) << server.status();
  httplib::Client client("127.0.0.1", (*server)->port());

  auto health = client.Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  auto ready = client.Get("/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_THAT(ready->body, HasSubstr("loading"));
  auto completion = client.Post("/v1/completions", R"({"prompt": "x"})", "application/json");
  ASSERT_TRUE(completion);
  EXPECT_EQ(completion->status, 503);
  EXPECT_THAT(completion->body, HasSubstr(R"("type":"service_unavailable")"));
  auto unknown = client.Get("/v1/engines");
  ASSERT_TRUE(unknown);
  EXPECT_EQ(unknown->status, 404);
  EXPECT_THAT(unknown->body, HasSubstr(R"("error":)"));

  (*server)->Drain();
  ready = client.Get("/ready");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->status, 503);
  EXPECT_THAT(ready->body, HasSubstr("draining"));
  (*server)->Stop();
  EXPECT_FALSE(client.Get("/health"));  // no longer listening
}

TEST(OpenAiHttpServer, RefusesAPortInUse) {
  absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> first = OpenAiHttpServer::Start("127.0.0.1", 0, 1, 1 << 20);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<std::unique_ptr<OpenAiHttpServer>> second =
      OpenAiHttpServer::Start("127.0.0.1", (*first)->port(), 1, 1 << 20);
  EXPECT_TRUE(absl::IsUnavailable(second.status())) << second.status();
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("cannot listen"));
}

}  // namespace
}  // namespace grinqh
