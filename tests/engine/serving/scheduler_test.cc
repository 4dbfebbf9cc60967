// The continuous-batching scheduler on the bundled model: every request, however it is
// batched, chunked and interleaved, streams exactly what Generate gives it alone; and the
// queue, the KV budget, cancellation and shutdown behave as engine/serving/scheduler.h says.
#include "engine/serving/scheduler.h"

#include <unistd.h>

#include <atomic>
#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <set>

#include "engine/calibration/grinqh_writer.h"
#include "engine/base/unicode.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fixtures.h"

namespace grinqh {
namespace {

using ::testing::HasSubstr;
constexpr auto kPatience = std::chrono::seconds(120);

// The events of one request, as the scheduler thread delivers them.
class Stream {
 public:
  // Runs on the scheduler thread; `on_event` (optional) sees each event first.
  EventCallback Callback(std::function<void(const StreamEvent&)> on_event = {}) {
    return [this, on_event = std::move(on_event)](const StreamEvent& event) {
      if (on_event) on_event(event);
      std::lock_guard lock(mutex_);
      EXPECT_FALSE(finished_) << "an event after the final one";
      events_.push_back(event);
      finished_ = event.finished;
      changed_.notify_all();
    };
  }
  // Waits until `n` events have arrived (or the final one).
  void WaitForEvents(size_t n) {
    std::unique_lock lock(mutex_);
    ASSERT_TRUE(changed_.wait_for(lock, kPatience, [&] { return finished_ || events_.size() >= n; }));
  }
  void WaitForFinal() {
    std::unique_lock lock(mutex_);
    ASSERT_TRUE(changed_.wait_for(lock, kPatience, [&] { return finished_; })) << "no final event";
  }
  bool finished() {
    std::lock_guard lock(mutex_);
    return finished_;
  }
  std::vector<StreamEvent> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }
  const StreamEvent& final_event() { return events_.back(); }  // after WaitForFinal
  std::vector<int32_t> tokens() {
    std::vector<int32_t> all;
    for (const StreamEvent& e : events()) all.insert(all.end(), e.tokens.begin(), e.tokens.end());
    return all;
  }
  std::string text() {
    std::string all;
    for (const StreamEvent& e : events()) all += e.text;
    return all;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<StreamEvent> events_;
  bool finished_ = false;
};

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override { LoadModels(testing::SourceDir() / "models" / "tiny-llama3"); }
  void LoadModels(const std::filesystem::path& path) {
    // The reference runs Generate on a model of its own: a backend runs one Forward at a time.
    for (auto* model : {&model_, &reference_}) {
      auto loaded = Model::Load(path);
      ASSERT_TRUE(loaded.ok()) << loaded.status();
      *model = *std::move(loaded);
    }
  }
  GenerationRequest Request(const std::string& text, int max_tokens) const {
    GenerationRequest request;
    request.prompt_ids = model_->tokenizer()->Encode(text, true);
    request.max_tokens = max_tokens;
    return request;
  }
  GenerationRequest RandomRequest(int prompt_length, int max_tokens, uint32_t seed) const {
    std::mt19937 rng(seed);
    GenerationRequest request;
    for (int i = 0; i < prompt_length; ++i) request.prompt_ids.push_back(static_cast<int32_t>(rng() % 8192));
    request.max_tokens = max_tokens;
    request.stop_at_eos = false;
    return request;
  }
  GenerationResult Alone(const GenerationRequest& request) {
    auto result = Generate(*reference_, request);
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? *std::move(result) : GenerationResult{};
  }
  // Submits and returns the id, failing the test when Submit refuses.
  Scheduler::RequestId MustSubmit(Scheduler& scheduler, const GenerationRequest& request, Stream& stream,
                                  std::function<void(const StreamEvent&)> on_event = {}) {
    auto id = scheduler.Submit(request, stream.Callback(std::move(on_event)));
    EXPECT_TRUE(id.ok()) << id.status();
    return id.ok() ? *id : 0;
  }
  // The stream carries what Generate gives the request alone, in well-formed events.
  void ExpectSameAsAlone(Stream& stream, const GenerationRequest& request, const std::string& what) {
    SCOPED_TRACE(what);
    stream.WaitForFinal();
    const GenerationResult alone = Alone(request);
    EXPECT_EQ(stream.tokens(), alone.tokens);
    EXPECT_EQ(stream.text(), alone.text);
    const std::vector<StreamEvent> events = stream.events();
    EXPECT_EQ(events.back().finish_reason, alone.finish_reason);
    EXPECT_TRUE(events.back().status.ok()) << events.back().status;
    EXPECT_EQ(events.back().usage.completion_tokens, static_cast<int>(alone.tokens.size()));
    EXPECT_EQ(events.back().usage.prompt_tokens, static_cast<int>(request.prompt_ids.size()));
    EXPECT_GT(events.back().usage.time_to_first_token_seconds, 0);
    for (const StreamEvent& e : events) {
      EXPECT_TRUE(IsValidUtf8(e.text)) << "event text is not whole UTF-8 characters";
      EXPECT_LE(e.tokens.size(), 1u);
    }
  }

  std::unique_ptr<Model> model_, reference_;
};

// A latch a callback can wait on: freezes the scheduler thread between steps, so the test
// can fill the queue or look at the stats while nothing moves.
class Gate {
 public:
  void Open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  void WaitOpen() {
    std::unique_lock lock(mutex_);
    changed_.wait(lock, [&] { return open_; });
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
};

TEST_F(SchedulerTest, ConcurrentRequestsEachGetWhatTheyGetAlone) {
  std::vector<GenerationRequest> requests = {
      Request("def fibonacci(n):\n    \"\"\"Return", 48),
      Request("import numpy as np\n", 30),
      Request("class Stack:\n    def __init__(self):\n        self.items = []\n\n    def push(self, item):", 40),
      Request("for i in range(10):", 1),
      RandomRequest(150, 20, 1),
      RandomRequest(1, 25, 2),
      RandomRequest(33, 12, 3),
  };
  requests[0].stop = {"Parameters"};  // ends at a stop string
  requests[1].sampling = {.temperature = 0.8f, .top_k = 40, .top_p = 0.9f, .seed = 11};
  requests[2].sampling = {.temperature = 1.0f, .seed = 5};
  requests[2].stop = {"\n\n", "return"};
  requests[5].sampling = {.temperature = 0.7f, .top_p = 0.95f, .seed = 99};
  for (int i = 0; i < 5; ++i) requests.push_back(Request("def add(a, b):\n    return a + b\n\ndef mul", 20 + i));
  // Up to 32 streams, as the server's integration test runs: greedy, prompts of every length.
  for (int i = 0; requests.size() < 32; ++i) requests.push_back(RandomRequest(1 + 9 * i, 16, 100 + uint32_t(i)));

  // Which requests received a token at which step: interleaving shows as shared steps.
  std::mutex mutex;
  std::map<int64_t, std::set<size_t>> tokens_at_step;
  std::vector<Stream> streams(requests.size());  // before the scheduler: they outlive it
  Scheduler scheduler(*model_, {.max_batch_size = 24, .max_queue = 32, .prefill_chunk = 16, .max_step_tokens = 64});
  for (size_t i = 0; i < requests.size(); ++i) {
    MustSubmit(scheduler, requests[i], streams[i], [&, i](const StreamEvent& event) {
      if (event.tokens.empty()) return;
      const int64_t step = scheduler.stats().steps;
      std::lock_guard lock(mutex);
      tokens_at_step[step].insert(i);
    });
  }
  for (size_t i = 0; i < requests.size(); ++i) ExpectSameAsAlone(streams[i], requests[i], "request " + std::to_string(i));
  EXPECT_EQ(streams[0].final_event().finish_reason, FinishReason::kStop);
  size_t widest = 0;
  for (const auto& [step, ids] : tokens_at_step) widest = std::max(widest, ids.size());
  EXPECT_GE(widest, 8u) << "requests did not share steps";
  const SchedulerStats stats = scheduler.stats();
  EXPECT_EQ(stats.running, 0);
  EXPECT_EQ(stats.queued, 0);
  EXPECT_EQ(stats.kv_tokens_reserved, 0);
  EXPECT_EQ(streams[1].final_event().usage.effective_bits, 16.f);  // bf16, full depth
}

// With a small prefill chunk, a long prompt takes many steps, and a sequence already
// decoding gets a token in every one of them.
TEST_F(SchedulerTest, LongPromptIsPrefilledInChunksWhileAnotherKeepsDecoding) {
  const GenerationRequest decoding = RandomRequest(8, 120, 4);
  const GenerationRequest long_prompt = RandomRequest(200, 5, 5);  // 13 chunks
  std::atomic<int> decoded{0}, decoded_when_long_began{-1};
  std::atomic<int> widest_step{0};
  Stream a, b;
  Scheduler scheduler(*model_, {.prefill_chunk = 16});
  MustSubmit(scheduler, decoding, a, [&](const StreamEvent&) {
    ++decoded;
    widest_step = std::max(widest_step.load(), scheduler.stats().batch_tokens);
  });
  a.WaitForEvents(3);
  const int decoded_before = decoded.load();
  MustSubmit(scheduler, long_prompt, b, [&](const StreamEvent&) {
    if (decoded_when_long_began < 0) decoded_when_long_began = decoded.load();
  });
  ExpectSameAsAlone(b, long_prompt, "long prompt");
  ExpectSameAsAlone(a, decoding, "decoding");
  EXPECT_GE(decoded_when_long_began - decoded_before, 12) << "the decode stalled during the long prefill";
  EXPECT_EQ(widest_step.load(), 1 + 16);  // one decode beside one chunk
}

TEST_F(SchedulerTest, FullQueueIsResourceExhausted) {
  Gate gate;
  Stream first, second, third, refused;
  Scheduler scheduler(*model_, {.max_batch_size = 1, .max_queue = 2});
  MustSubmit(scheduler, RandomRequest(4, 3, 1), first, [&](const StreamEvent&) { gate.WaitOpen(); });
  while (scheduler.stats().running == 0) std::this_thread::yield();  // first is in the batch, frozen
  MustSubmit(scheduler, RandomRequest(4, 3, 2), second);
  MustSubmit(scheduler, RandomRequest(4, 3, 3), third);
  auto status = scheduler.Submit(RandomRequest(4, 3, 4), refused.Callback()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()), HasSubstr("queue is full"));
  EXPECT_EQ(scheduler.stats().queued, 2);
  gate.Open();
  for (Stream* s : {&first, &second, &third}) s->WaitForFinal();
  EXPECT_TRUE(refused.events().empty());
}

TEST_F(SchedulerTest, KvBudgetRefusesWhatCanNeverFitAndQueuesWhatMustWait) {
  Stream never, first, second;
  Scheduler scheduler(*model_, {.kv_budget_tokens = 200});
  auto status = scheduler.Submit(RandomRequest(20, 400, 1), never.Callback()).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(status.message()), HasSubstr("420 KV cache tokens"));

  // 120 tokens each: the second waits for the first to finish, though slots are free.
  const GenerationRequest first_request = RandomRequest(20, 100, 2), second_request = RandomRequest(20, 100, 3);
  std::atomic<int> order{0}, first_finished_at{-1}, second_started_at{-1};
  std::atomic<bool> second_submitted{false}, second_ran_early{false};
  MustSubmit(scheduler, first_request, first, [&](const StreamEvent& event) {
    const SchedulerStats stats = scheduler.stats();
    if (second_submitted && !event.finished && (stats.queued != 1 || stats.kv_tokens_reserved != 120)) {
      second_ran_early = true;
    }
    if (event.finished) first_finished_at = order++;
  });
  first.WaitForEvents(2);
  MustSubmit(scheduler, second_request, second, [&](const StreamEvent&) {
    if (second_started_at < 0) second_started_at = order++;
  });
  second_submitted = true;
  ExpectSameAsAlone(first, first_request, "first");
  ExpectSameAsAlone(second, second_request, "second");
  EXPECT_FALSE(second_ran_early);
  EXPECT_LT(first_finished_at.load(), second_started_at.load());
  EXPECT_EQ(scheduler.stats().kv_tokens_reserved, 0);
}

TEST_F(SchedulerTest, CancelEndsTheStreamAndReturnsTheSlotAndCache) {
  const GenerationRequest request = RandomRequest(10, 150, 6);
  SchedulerStats at_final;
  Stream running, queued, after;
  Scheduler scheduler(*model_, {.max_batch_size = 1});
  const auto id = MustSubmit(scheduler, request, running, [&](const StreamEvent& event) {
    if (event.finished) at_final = scheduler.stats();
  });
  // A second request waits in the queue behind it (one slot) and is cancelled there.
  const auto queued_id = MustSubmit(scheduler, RandomRequest(10, 5, 7), queued);
  running.WaitForEvents(5);
  scheduler.Cancel(queued_id);
  queued.WaitForFinal();
  EXPECT_EQ(queued.final_event().finish_reason, FinishReason::kCancelled);
  EXPECT_TRUE(queued.tokens().empty());
  scheduler.Cancel(id);
  running.WaitForFinal();
  EXPECT_EQ(running.final_event().finish_reason, FinishReason::kCancelled);
  const std::vector<int32_t> tokens = running.tokens();
  EXPECT_GE(tokens.size(), 5u);
  EXPECT_LT(tokens.size(), 150u);
  EXPECT_EQ(running.final_event().usage.completion_tokens, static_cast<int>(tokens.size()));
  const std::vector<int32_t> alone = Alone(request).tokens;
  EXPECT_TRUE(std::equal(tokens.begin(), tokens.end(), alone.begin())) << "not a prefix of the solo output";
  // By the final event, the slot and the reserved KV are back.
  EXPECT_EQ(at_final.running, 0);
  EXPECT_EQ(at_final.kv_tokens_reserved, 0);
  scheduler.Cancel(id);  // finished: ignored
  scheduler.Cancel(12345);
  const GenerationRequest next = RandomRequest(5, 4, 8);
  MustSubmit(scheduler, next, after);
  ExpectSameAsAlone(after, next, "after the cancellations");
}

TEST_F(SchedulerTest, ShutdownWithGraceLetsRequestsFinishThenRefuses) {
  std::vector<GenerationRequest> requests = {RandomRequest(12, 30, 1), RandomRequest(40, 20, 2), RandomRequest(3, 25, 3)};
  std::vector<Stream> streams(requests.size());
  Stream late;
  Scheduler scheduler(*model_, {.max_batch_size = 2});
  for (size_t i = 0; i < requests.size(); ++i) MustSubmit(scheduler, requests[i], streams[i]);
  streams[0].WaitForEvents(1);
  scheduler.Shutdown(std::chrono::minutes(2));
  for (Stream& s : streams) EXPECT_TRUE(s.finished()) << "Shutdown returned before the final events";
  for (size_t i = 0; i < requests.size(); ++i) ExpectSameAsAlone(streams[i], requests[i], "request " + std::to_string(i));
  EXPECT_EQ(scheduler.Submit(RandomRequest(3, 3, 4), late.Callback()).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(SchedulerTest, ShutdownWithoutGraceCancelsWhatIsLeft) {
  std::vector<Stream> streams(3);
  Stream late;
  Scheduler scheduler(*model_, {.max_batch_size = 2});
  for (size_t i = 0; i < streams.size(); ++i) MustSubmit(scheduler, RandomRequest(10, 2000, uint32_t(i)), streams[i]);
  streams[0].WaitForEvents(2);
  scheduler.Shutdown(std::chrono::milliseconds(0));
  for (Stream& s : streams) {
    ASSERT_TRUE(s.finished()) << "Shutdown returned before the final events";
    EXPECT_EQ(s.final_event().finish_reason, FinishReason::kCancelled);
    EXPECT_LT(s.tokens().size(), 2000u);
  }
  EXPECT_TRUE(streams[2].tokens().empty());  // it was still queued
  const SchedulerStats stats = scheduler.stats();
  EXPECT_EQ(stats.running + stats.queued, 0);
  EXPECT_EQ(stats.kv_tokens_reserved, 0);
  EXPECT_EQ(scheduler.Submit(RandomRequest(3, 3, 4), late.Callback()).status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(SchedulerTest, InvalidRequestsAreRefusedAtSubmit) {
  Scheduler scheduler(*model_, {});
  const auto code = [&](const std::function<void(GenerationRequest&)>& change) {
    GenerationRequest request = RandomRequest(5, 5, 1);
    change(request);
    Stream stream;
    return scheduler.Submit(request, stream.Callback()).status().code();
  };
  constexpr auto kInvalid = absl::StatusCode::kInvalidArgument;
  EXPECT_EQ(code([](GenerationRequest& r) { r.prompt_ids.clear(); }), kInvalid);
  EXPECT_EQ(code([](GenerationRequest& r) { r.sampling.top_p = 0.f; }), kInvalid);
  EXPECT_EQ(code([](GenerationRequest& r) { r.sampling.top_p = 1.5f; }), kInvalid);
  EXPECT_EQ(code([](GenerationRequest& r) { r.sampling.temperature = std::numeric_limits<float>::quiet_NaN(); }), kInvalid);
  EXPECT_EQ(code([](GenerationRequest& r) { r.sampling.temperature = -1.f; }), kInvalid);
  EXPECT_EQ(code([](GenerationRequest& r) { r.decode_bits = 3.f; }), kInvalid);  // a plain model
  EXPECT_EQ(code([](GenerationRequest& r) { r.max_tokens = 0; }), kInvalid);
  EXPECT_EQ(code([](GenerationRequest& r) { r.prompt_ids.assign(4096, 5); }), kInvalid);
  EXPECT_EQ(code([](GenerationRequest& r) { r.prompt_ids.push_back(8192); }), kInvalid);
  EXPECT_EQ(code([](GenerationRequest& r) { r.stop = {""}; }), kInvalid);
  EXPECT_EQ(scheduler.stats().queued + scheduler.stats().running, 0);
}

// GRINQH: requests at different decode bits share batches (graded decode rows beside
// full-depth ones and prefill chunks), and each gets what it gets alone.
TEST_F(SchedulerTest, GrinqhRequestsAtDifferentBitsShareABatch) {
  const auto path = std::filesystem::temp_directory_path() / ("grinqh_scheduler_test_" + std::to_string(getpid()) + ".grinqh");
  ASSERT_TRUE(QuantizeToGrinqhFile(testing::SourceDir() / "models" / "tiny-llama3", {}, path).ok());
  LoadModels(path);
  std::filesystem::remove(path);
  ASSERT_EQ(model_->max_decode_bits(), 8);
  std::vector<GenerationRequest> requests;
  const float bits[] = {0.f, 2.f, 2.5f, 3.f, 4.f, 8.f, 3.f};
  for (size_t i = 0; i < std::size(bits); ++i) {
    requests.push_back(RandomRequest(10 + 17 * static_cast<int>(i), 24, static_cast<uint32_t>(i)));
    requests.back().decode_bits = bits[i];
  }
  requests.back().sampling = {.temperature = 0.9f, .seed = 3};
  std::atomic<int> widest{0};
  std::vector<Stream> streams(requests.size());
  Scheduler scheduler(*model_, {.prefill_chunk = 24});
  for (size_t i = 0; i < requests.size(); ++i) {
    MustSubmit(scheduler, requests[i], streams[i],
               [&](const StreamEvent&) { widest = std::max(widest.load(), scheduler.stats().batch_sequences); });
  }
  for (size_t i = 0; i < requests.size(); ++i) {
    ExpectSameAsAlone(streams[i], requests[i], "bits " + std::to_string(bits[i]));
    EXPECT_EQ(streams[i].final_event().usage.effective_bits, bits[i] == 0.f ? 8.f : bits[i]);
  }
  EXPECT_GE(widest.load(), 4);
}

}  // namespace
}  // namespace grinqh
