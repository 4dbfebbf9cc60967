// The real `grinqh serve` on loopback, driven by a real C++ gRPC client: streaming, batching,
// tiers, validation, cancellation, deadlines, overload and SIGTERM drain. Completions are
// checked against the engine's single-request Generate() on the same model, and (with
// ../shared) against Hugging Face's greedy ids.
#include <grpcpp/grpcpp.h>
#include <httplib.h>

#include <cmath>
#include <fstream>
#include <limits>
#include <thread>

#include "engine/serving/generator.h"
#include "engine/calibration/grinqh_writer.h"
#include "engine/serving/model.h"
#include "gmock/gmock.h"
#include "grinqh/v1/inference.grpc.pb.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/fixtures.h"
#include "tests/integration/server_process.h"

namespace grinqh {
namespace {

using ::grinqh::testing::ServerProcess;
using ::testing::HasSubstr;

std::string BundledModel() { return (::grinqh::testing::SourceDir() / "models" / "tiny-llama3").string(); }

// What one Generate call returned.
struct Completion {
  grpc::Status status;
  std::string text;
  std::vector<int32_t> ids;
  std::vector<v1::GenerateResponse> messages;
  const v1::GenerateResponse& last() const { return messages.back(); }
};

std::unique_ptr<v1::InferenceService::Stub> Connect(const std::string& address) {
  return v1::InferenceService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

Completion Stream(v1::InferenceService::Stub& stub, const v1::GenerateRequest& request, double timeout_seconds = 120) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000)));
  Completion completion;
  auto reader = stub.Generate(&context, request);
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
    completion.text += response.text();
    completion.ids.insert(completion.ids.end(), response.token_ids().begin(), response.token_ids().end());
    completion.messages.push_back(response);
  }
  completion.status = reader->Finish();
  return completion;
}

v1::GenerateRequest Prompt(const std::string& text, uint32_t max_tokens) {
  v1::GenerateRequest request;
  request.set_prompt(text);
  request.set_max_tokens(max_tokens);
  return request;
}

// A metric's value from the server's /metrics (first series whose line starts with `series`).
double Metric(int port, const std::string& series) {
  httplib::Client client("127.0.0.1", port);
  auto result = client.Get("/metrics");
  if (!result || result->status != 200) return std::numeric_limits<double>::quiet_NaN();
  std::istringstream lines(result->body);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind(series + " ", 0) == 0) return std::stod(line.substr(series.size() + 1));
  }
  return std::numeric_limits<double>::quiet_NaN();
}

// Polls until the metric equals `value` (or 10 s pass); returns the last value read.
double AwaitMetric(int port, const std::string& series, double value) {
  double last = Metric(port, series);
  for (int i = 0; i < 200 && last != value; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    last = Metric(port, series);
  }
  return last;
}

// The engine's answer for one request alone: the reference for the server's batched one.
class SoloReference {
 public:
  explicit SoloReference(const std::string& model_path) : model_(*Model::Load(model_path)) {}
  GenerationResult Greedy(const std::string& prompt, int max_tokens, float decode_bits = 0.f) {
    GenerationRequest request;
    request.prompt_ids = model_->tokenizer()->Encode(prompt, /*add_special_tokens=*/true);
    request.max_tokens = max_tokens;
    request.decode_bits = decode_bits;
    return *Generate(*model_, request);
  }

 private:
  std::unique_ptr<Model> model_;
};

std::string WriteConfig(const std::string& name, const std::string& yaml) {
  const std::string path = ::testing::TempDir() + "/" + name + ".yaml";
  std::ofstream(path) << yaml;
  return path;
}

// One server on the bundled model for most tests.
class ServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { server_ = new ServerProcess({"--model", BundledModel()}); }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(server_->ok());
    stub_ = Connect(server_->address());
  }
  static ServerProcess* server_;
  std::unique_ptr<v1::InferenceService::Stub> stub_;
};
ServerProcess* ServerTest::server_ = nullptr;

TEST_F(ServerTest, StreamsTheCompletionGenerateGivesAlone) {
  const GenerationResult expected = SoloReference(BundledModel()).Greedy("def fibonacci(n):", 24);
  const Completion got = Stream(*stub_, Prompt("def fibonacci(n):", 24));
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  EXPECT_EQ(got.ids, expected.tokens);
  EXPECT_EQ(got.text, expected.text);
  EXPECT_GT(got.messages.size(), 1u);  // streamed, not one message at the end
  for (size_t i = 0; i + 1 < got.messages.size(); ++i) {
    EXPECT_EQ(got.messages[i].finish_reason(), v1::FINISH_REASON_UNSPECIFIED);
  }
  const v1::GenerateResponse& last = got.last();
  EXPECT_EQ(last.finish_reason(), expected.finish_reason == FinishReason::kEos ? v1::FINISH_REASON_EOS
                                                                                 : v1::FINISH_REASON_LENGTH);
  EXPECT_FALSE(last.request_id().empty());
  EXPECT_EQ(last.usage().completion_tokens(), expected.tokens.size());
  EXPECT_EQ(last.usage().prompt_tokens(), 9u);  // BOS + 8 tokens, as `grinqh tokenize` gives
  EXPECT_GT(last.usage().time_to_first_token_seconds(), 0);
  EXPECT_EQ(last.usage().effective_bits(), 16.f);
  EXPECT_EQ(last.usage().tier(), "quality");
}

TEST_F(ServerTest, EchoesTheRequestIdAndStopsAtStopStrings) {
  const Completion full = Stream(*stub_, Prompt("import os\n", 32));
  ASSERT_TRUE(full.status.ok());
  ASSERT_GT(full.text.size(), 8u);
  v1::GenerateRequest request = Prompt("import os\n", 32);
  request.set_request_id("my-request-7");
  const std::string stop = full.text.substr(4, 3);
  request.add_stop(stop);
  const Completion stopped = Stream(*stub_, request);
  ASSERT_TRUE(stopped.status.ok());
  EXPECT_EQ(stopped.text, full.text.substr(0, full.text.find(stop)));
  EXPECT_EQ(stopped.last().finish_reason(), v1::FINISH_REASON_STOP);
  for (const auto& m : stopped.messages) EXPECT_EQ(m.request_id(), "my-request-7");
}

TEST_F(ServerTest, ThirtyTwoConcurrentStreamsEachGetTheirSoloText) {
  SoloReference solo(BundledModel());
  std::vector<std::string> prompts;
  std::vector<GenerationResult> expected;
  for (int i = 0; i < 32; ++i) {
    prompts.push_back("def function_" + std::to_string(i) + "(x" + std::string(static_cast<size_t>(i % 5), ',') + "):");
    expected.push_back(solo.Greedy(prompts.back(), 12 + i % 9));
  }
  std::vector<Completion> got(32);
  std::vector<std::thread> clients;
  for (int i = 0; i < 32; ++i) {
    clients.emplace_back([&, i] { got[i] = Stream(*stub_, Prompt(prompts[i], static_cast<uint32_t>(12 + i % 9))); });
  }
  for (auto& c : clients) c.join();
  for (int i = 0; i < 32; ++i) {
    ASSERT_TRUE(got[i].status.ok()) << i << ": " << got[i].status.error_message();
    EXPECT_EQ(got[i].ids, expected[i].tokens) << "stream " << i;
    EXPECT_EQ(got[i].text, expected[i].text) << "stream " << i;
  }
}

TEST_F(ServerTest, GreedyIdsMatchHuggingFaceWhileBatched) {
  GRINQH_REQUIRE_SHARED();
  std::ifstream file(::grinqh::testing::SharedDir() / "models" / "tiny-llama3" / "reference.json");
  const auto reference = nlohmann::json::parse(file);
  std::vector<std::thread> clients;
  std::vector<Completion> got(reference["prompts"].size());
  for (size_t i = 0; i < got.size(); ++i) {
    clients.emplace_back([&, i] {
      v1::GenerateRequest request;
      for (int id : reference["prompts"][i]["input_ids"]) request.mutable_prompt_ids()->add_ids(id);
      request.set_max_tokens(48);
      got[i] = Stream(*stub_, request);
    });
  }
  for (auto& c : clients) c.join();
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(got[i].status.ok());
    EXPECT_EQ(got[i].ids, reference["prompts"][i]["greedy_ids"].get<std::vector<int32_t>>()) << "prompt " << i;
  }
}

struct InvalidCase {
  std::string name;
  std::function<void(v1::GenerateRequest&)> edit;
  grpc::StatusCode code;
  std::string field;  // the message names it
};

TEST_F(ServerTest, EveryMalformedFieldIsRefusedByName) {
  const std::vector<InvalidCase> cases = {
      {"no input", [](auto& r) { r.clear_prompt(); }, grpc::INVALID_ARGUMENT, "input"},
      {"empty prompt", [](auto& r) { r.set_prompt(""); }, grpc::INVALID_ARGUMENT, "prompt"},
      {"prompt beyond the context",
       [](auto& r) {
         for (int i = 0; i < 4096; ++i) r.mutable_prompt_ids()->add_ids(5);
       },
       grpc::INVALID_ARGUMENT, "prompt_ids"},
      {"id outside the vocabulary", [](auto& r) { r.mutable_prompt_ids()->add_ids(8192); }, grpc::INVALID_ARGUMENT,
       "prompt_ids.ids[0]"},
      {"max_tokens too large", [](auto& r) { r.set_max_tokens(100000); }, grpc::INVALID_ARGUMENT, "max_tokens"},
      {"NaN temperature", [](auto& r) { r.set_temperature(std::nanf("")); }, grpc::INVALID_ARGUMENT, "temperature"},
      {"negative temperature", [](auto& r) { r.set_temperature(-1); }, grpc::INVALID_ARGUMENT, "temperature"},
      {"top_p 0", [](auto& r) { r.set_top_p(0); }, grpc::INVALID_ARGUMENT, "top_p"},
      {"top_p above 1", [](auto& r) { r.set_top_p(1.5f); }, grpc::INVALID_ARGUMENT, "top_p"},
      {"unknown tier", [](auto& r) { r.set_tier("ludicrous"); }, grpc::INVALID_ARGUMENT, "tier"},
      {"bits on a bf16 model", [](auto& r) { r.set_target_bits(3); }, grpc::INVALID_ARGUMENT, "target_bits"},
      {"negative min_bits", [](auto& r) { r.set_min_bits(-1); }, grpc::INVALID_ARGUMENT, "min_bits"},
      {"prompt not UTF-8", [](auto& r) { r.set_prompt("caf\xc3"); }, grpc::INVALID_ARGUMENT, "prompt"},
      {"stop not UTF-8", [](auto& r) { *r.add_stop() = std::string(1, '\xff'); }, grpc::INVALID_ARGUMENT, "stop[0]"},
      {"empty stop", [](auto& r) { r.add_stop(); }, grpc::INVALID_ARGUMENT, "stop[0]"},
      {"another model", [](auto& r) { r.set_model("llama-70b"); }, grpc::NOT_FOUND, "model"},
      {"chat without a template",
       [](auto& r) {
         auto* m = r.mutable_messages()->add_messages();
         m->set_role("user");
         m->set_content("hi");
       },
       grpc::FAILED_PRECONDITION, "chat template"},
  };
  for (const InvalidCase& c : cases) {
    v1::GenerateRequest request = Prompt("x = 1", 4);
    c.edit(request);
    const Completion got = Stream(*stub_, request);
    EXPECT_EQ(got.status.error_code(), c.code) << c.name << ": " << got.status.error_message();
    EXPECT_THAT(got.status.error_message(), HasSubstr(c.field)) << c.name;
    EXPECT_TRUE(got.messages.empty()) << c.name;
  }
  // The server is unharmed.
  EXPECT_TRUE(Stream(*stub_, Prompt("x = 1", 4)).status.ok());
}

TEST_F(ServerTest, TiersOnABf16ModelRunAtFullPrecisionAndSaySo) {
  const Completion quality = Stream(*stub_, Prompt("class Stack:", 16));
  v1::GenerateRequest request = Prompt("class Stack:", 16);
  request.set_tier("turbo");
  const Completion turbo = Stream(*stub_, request);
  ASSERT_TRUE(turbo.status.ok());
  EXPECT_EQ(turbo.text, quality.text);
  EXPECT_EQ(turbo.last().usage().effective_bits(), 16.f);
  EXPECT_EQ(turbo.last().usage().tier(), "turbo");
  EXPECT_THAT(turbo.last().usage().precision_note(), HasSubstr("full precision"));
  EXPECT_TRUE(quality.last().usage().precision_note().empty());
}

TEST_F(ServerTest, CancellingMidStreamFreesTheSlotAndCache) {
  grpc::ClientContext context;
  auto reader = stub_->Generate(&context, Prompt("def main():", 4000));
  v1::GenerateResponse response;
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(Metric(server_->metrics_port(), "grinqh_running_batch_size"), 1);
  EXPECT_GT(Metric(server_->metrics_port(), "grinqh_kv_cache_used_tokens"), 0);
  context.TryCancel();
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::CANCELLED);
  EXPECT_EQ(AwaitMetric(server_->metrics_port(), "grinqh_running_batch_size", 0), 0);
  EXPECT_EQ(AwaitMetric(server_->metrics_port(), "grinqh_kv_cache_used_tokens", 0), 0);
}

TEST_F(ServerTest, MetricsCountAFinishedRequestByModelTierAndFinishReason) {
  // A series appears on first use, so one never used reads as 0.
  const auto count = [this](const std::string& series) {
    const double value = Metric(server_->metrics_port(), series);
    return std::isnan(value) ? 0.0 : value;
  };
  const std::string model = "model=\"tiny-llama3\"";
  const std::string requests =
      "grinqh_requests_total{" + model + ",code=\"OK\",finish_reason=\"length\",tier=\"balanced\"}";
  const std::vector<std::string> histograms = {
      "grinqh_request_queue_time_seconds", "grinqh_request_prefill_time_seconds",
      "grinqh_request_decode_time_seconds", "grinqh_time_per_output_token_seconds"};
  const auto histogram_count = [&](const std::string& name) {
    return count(name + "_count{" + model + ",tier=\"balanced\"}");
  };
  const double requests_before = count(requests);
  std::vector<double> before;
  for (const std::string& name : histograms) before.push_back(histogram_count(name));

  v1::GenerateRequest request = Prompt("def main():", 4);
  request.set_tier("balanced");
  const Completion got = Stream(*stub_, request);
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  ASSERT_EQ(got.last().finish_reason(), v1::FINISH_REASON_LENGTH);
  // The handler records the request before it returns the status the client just read.
  EXPECT_EQ(count(requests), requests_before + 1);
  for (size_t i = 0; i < histograms.size(); ++i) {
    EXPECT_EQ(histogram_count(histograms[i]), before[i] + 1) << histograms[i];
  }
  EXPECT_GT(count("process_resident_memory_bytes"), 0);
}

TEST_F(ServerTest, DeadlinesAreHonoured) {
  const Completion got = Stream(*stub_, Prompt("def main():", 4000), /*timeout_seconds=*/0.3);
  EXPECT_EQ(got.status.error_code(), grpc::DEADLINE_EXCEEDED);
  EXPECT_EQ(AwaitMetric(server_->metrics_port(), "grinqh_running_batch_size", 0), 0);
  EXPECT_EQ(AwaitMetric(server_->metrics_port(), "grinqh_kv_cache_used_tokens", 0), 0);
}

TEST_F(ServerTest, TokenizeAndDescribeTheModel) {
  grpc::ClientContext tokenize_context;
  v1::TokenizeRequest tokenize;
  tokenize.set_text("def fibonacci(n):");
  tokenize.set_add_special_tokens(true);
  v1::TokenizeResponse ids;
  ASSERT_TRUE(stub_->Tokenize(&tokenize_context, tokenize, &ids).ok());
  // As `grinqh tokenize --add-special-tokens` gives (0 = <|begin_of_text|>).
  EXPECT_THAT(ids.ids(), ::testing::ElementsAre(0, 328, 286, 1712, 266, 1210, 3845, 597, 964));
  EXPECT_EQ(ids.token_bytes(1), "def");

  grpc::ClientContext list_context;
  v1::ListModelsResponse models;
  ASSERT_TRUE(stub_->ListModels(&list_context, {}, &models).ok());
  ASSERT_EQ(models.models_size(), 1);
  const v1::ModelInfo& info = models.models(0);
  EXPECT_EQ(info.name(), "tiny-llama3");
  EXPECT_EQ(info.architecture(), "llama");
  EXPECT_EQ(info.context_length(), 4096u);
  EXPECT_EQ(info.stored_bits(), 16u);
  EXPECT_FALSE(info.graded_decoding());
  EXPECT_EQ(info.tiers_size(), 5);

  grpc::ClientContext get_context;
  v1::GetModelRequest get;
  get.set_name("nope");
  v1::ModelInfo unused;
  EXPECT_EQ(stub_->GetModel(&get_context, get, &unused).error_code(), grpc::NOT_FOUND);
}

TEST(ServerLimitsTest, OverloadAndKvBudgetAreRefusedWithResourceExhausted) {
  const std::string config = WriteConfig("small", R"(
batching: {max_batch_size: 1, max_queue: 1, prefill_chunk: 64, max_step_tokens: 128}
kv_cache: {budget_tokens: 4096}
)");
  ServerProcess server({"--config", config, "--model", BundledModel()});
  ASSERT_TRUE(server.ok());
  auto stub = Connect(server.address());
  // One running, one queued; the third finds the queue full.
  grpc::ClientContext running_context, queued_context;
  auto running = stub->Generate(&running_context, Prompt("def a():", 3000));
  v1::GenerateResponse response;
  ASSERT_TRUE(running->Read(&response));
  auto queued = stub->Generate(&queued_context, Prompt("def b():", 8));
  ASSERT_EQ(AwaitMetric(server.metrics_port(), "grinqh_queue_depth", 1), 1);
  const Completion refused = Stream(*stub, Prompt("def c():", 8));
  EXPECT_EQ(refused.status.error_code(), grpc::RESOURCE_EXHAUSTED);
  EXPECT_THAT(refused.status.error_message(), HasSubstr("queue"));
  running_context.TryCancel();
  while (running->Read(&response)) {
  }
  running->Finish();
  // The queued request then runs to completion.
  std::string text;
  while (queued->Read(&response)) text += response.text();
  EXPECT_TRUE(queued->Finish().ok());
  EXPECT_FALSE(text.empty());
  // A request that could never fit the KV budget.
  v1::GenerateRequest huge;
  for (int i = 0; i < 4000; ++i) huge.mutable_prompt_ids()->add_ids(7);
  huge.set_max_tokens(95);  // 4095 positions > 4096 - ... fits the context, not the budget below
  const std::string tight = WriteConfig("tight", R"(
batching: {max_batch_size: 2, max_queue: 4, prefill_chunk: 256, max_step_tokens: 512}
kv_cache: {budget_tokens: 2048}
limits: {default_max_tokens: 128, max_tokens: 1024}
)");
  ServerProcess tight_server({"--config", tight, "--model", BundledModel()});
  ASSERT_TRUE(tight_server.ok());
  const Completion too_big = Stream(*Connect(tight_server.address()), huge);
  EXPECT_EQ(too_big.status.error_code(), grpc::RESOURCE_EXHAUSTED) << too_big.status.error_message();
  EXPECT_THAT(too_big.status.error_message(), HasSubstr("KV"));
}

TEST(ServerShutdownTest, SigtermLetsInFlightStreamsFinishThenExitsZero) {
  const double scale = ::grinqh::testing::TestTimeScale();
  const std::string config =
      WriteConfig("grace", "server: {shutdown_grace_seconds: " + std::to_string(60 * scale) + "}\n");
  ServerProcess server({"--config", config, "--model", BundledModel()});
  ASSERT_TRUE(server.ok());
  auto stub = Connect(server.address());
  grpc::ClientContext context;
  // Long enough (about a second here) to still be running when the server takes the signal.
  auto reader = stub->Generate(&context, Prompt("def main():", 3000));
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response));
  server.Signal(SIGTERM);
  // New requests are refused while the running one drains (once the signal is handled).
  Completion refused = Stream(*stub, Prompt("x", 4), 5);
  for (int i = 0; i < 250 && refused.status.ok(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    refused = Stream(*stub, Prompt("x", 4), 5);
  }
  EXPECT_EQ(refused.status.error_code(), grpc::UNAVAILABLE) << refused.status.error_message();
  int tokens = response.token_ids_size();
  v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
  while (reader->Read(&response)) {
    tokens += response.token_ids_size();
    finish = response.finish_reason();
  }
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(finish, v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(tokens, 3000);
  EXPECT_EQ(server.WaitForExit(30 * scale), 0) << server.log();
}

TEST(ServerShutdownTest, StreamsStillRunningWhenTheGraceEndsAreCancelled) {
  const std::string config = WriteConfig("short_grace", "server: {shutdown_grace_seconds: 0.5}\n");
  ServerProcess server({"--config", config, "--model", BundledModel()});
  ASSERT_TRUE(server.ok());
  auto stub = Connect(server.address());
  grpc::ClientContext context;
  auto reader = stub->Generate(&context, Prompt("def main():", 4000));
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response));
  server.Signal(SIGTERM);
  v1::FinishReason finish = v1::FINISH_REASON_UNSPECIFIED;
  while (reader->Read(&response)) finish = response.finish_reason();
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(finish, v1::FINISH_REASON_CANCELLED);
  EXPECT_EQ(server.WaitForExit(30), 0) << server.log();
}

// A GRINQH model: tiers and explicit targets decode at their bits, each stream as it would
// alone at those bits.
TEST(ServerGradedTest, TiersAndTargetsDecodeAtTheirBits) {
  const std::string path = ::testing::TempDir() + "/tiny-llama3.grinqh";
  ASSERT_TRUE(QuantizeToGrinqhFile(BundledModel(), {}, path).ok());
  SoloReference solo(path);
  ServerProcess server({"--model", path});
  ASSERT_TRUE(server.ok());
  auto stub = Connect(server.address());

  struct Case {
    std::string tier;
    float target_bits;
    float min_bits;
    float expected_bits;
  };
  const std::vector<Case> cases = {{"fast", 0, 0, 3}, {"turbo", 0, 0, 2}, {"", 2.5f, 0, 2.5f},
                                   {"turbo", 0, 3, 3}, {"quality", 0, 0, 8}};
  std::vector<Completion> got(cases.size());
  std::vector<std::thread> clients;
  for (size_t i = 0; i < cases.size(); ++i) {
    clients.emplace_back([&, i] {
      v1::GenerateRequest request = Prompt("def fibonacci(n):", 16);
      if (!cases[i].tier.empty()) request.set_tier(cases[i].tier);
      if (cases[i].target_bits > 0) request.set_target_bits(cases[i].target_bits);
      request.set_min_bits(cases[i].min_bits);
      got[i] = Stream(*stub, request);
    });
  }
  for (auto& c : clients) c.join();
  for (size_t i = 0; i < cases.size(); ++i) {
    ASSERT_TRUE(got[i].status.ok()) << got[i].status.error_message();
    const float bits = cases[i].expected_bits;
    EXPECT_EQ(got[i].last().usage().effective_bits(), bits) << i;
    EXPECT_EQ(got[i].text, solo.Greedy("def fibonacci(n):", 16, bits == 8 ? 0.f : bits).text) << i;
  }
  EXPECT_THAT(got[3].last().usage().precision_note(), HasSubstr("min_bits"));
  v1::GenerateRequest too_deep = Prompt("x", 4);
  too_deep.set_target_bits(9);
  const Completion refused = Stream(*stub, too_deep);
  EXPECT_EQ(refused.status.error_code(), grpc::INVALID_ARGUMENT);
  EXPECT_THAT(refused.status.error_message(), HasSubstr("target_bits"));
}

}  // namespace
}  // namespace grinqh
