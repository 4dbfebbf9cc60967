// Continuous (iteration-level) batching of generation requests over one model.
//
// One scheduler thread owns the backend. Every step it builds one Forward batch from the
// running sequences: each decoding sequence contributes its last token, and sequences
// still reading their prompt contribute a chunk of it (chunked prefill), so a long prompt
// never stalls the decodes running beside it. Requests join the batch at any step (from a
// bounded admission queue) and leave it the step they finish or are cancelled, and their
// KV cache is freed then. The KV budget is counted in tokens: a sequence reserves
// prompt + max_tokens positions (within the context, in whole blocks of the backend's KV
// pool, whose capacity bounds the budget) when it is admitted to the running batch.
// Admission is first come, first served: a request waiting for budget holds back those
// behind it, so a large request is never starved by small ones.
//
// The CPU backend sums every row in one order whatever shares its batch (cpu_ops.h), so a
// request streams exactly the tokens Generate gives it alone.
//
// Knows nothing of gRPC: the server turns Submit's status and the events into RPCs.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/serving/generator.h"
#include "engine/serving/model.h"

namespace grinqh {

struct SchedulerOptions {
  int max_batch_size = 32;           // sequences in the running batch
  int max_queue = 64;                // requests waiting for a slot; more are refused
  int prefill_chunk = 256;           // prompt tokens one sequence feeds per step
  int max_step_tokens = 512;         // tokens in one Forward: decodes first (all of them), then
                                     // prefill chunks in admission order while room is left
  // Cached positions reserved by all running sequences; the scheduler uses at most the
  // backend's KV pool (Backend::kv_capacity_tokens).
  int64_t kv_budget_tokens = 65536;
};

// What the request has cost so far; complete in the final event.
struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
  double time_to_first_token_seconds = 0;  // from Submit to the first generated token
  double queue_seconds = 0;                // from Submit to admission into the batch
  // GRINQH: the average bits per weight the decode steps read (the request's target), or
  // the stored full depth (16 for a plain bf16 model) when decoding at full precision.
  float effective_bits = 0;
};

// One step's output for one request. Delivered on the scheduler thread, in order.
struct StreamEvent {
  std::vector<int32_t> tokens;  // generated this step (usually one; none in the final event
                                // unless the last token came with it)
  std::vector<TokenLogprobs> logprobs;  // one per token, when the request asks
  std::string text;             // the text those tokens complete: whole UTF-8 characters,
                                // held back while it may be the start of a stop string
  bool finished = false;
  FinishReason finish_reason = FinishReason::kLength;  // when finished
  Usage usage;
  // Final event only: not OK when the engine failed the request (finish reason kCancelled).
  // Cannot happen to a request Submit accepted unless the backend itself fails.
  absl::Status status;
};
// Must not block: it runs on the scheduler thread between steps.
using EventCallback = std::function<void(const StreamEvent& event)>;

struct SchedulerStats {
  int queued = 0;                // waiting for a slot
  int running = 0;               // in the running batch
  int64_t kv_tokens_reserved = 0;
  int64_t kv_budget_tokens = 0;
  int64_t steps = 0;             // Forward calls so far
  // The mean target bits of the sequences that decoded in the last step (0 when none).
  float decode_bits_in_use = 0;
  int batch_sequences = 0;       // sequences in the last Forward
  int batch_tokens = 0;          // tokens in the last Forward (decodes + prefill chunks)
};

class Scheduler {
 public:
  using RequestId = uint64_t;

  Scheduler(Model& model, SchedulerOptions options);
  ~Scheduler();  // Shutdown(0), then joins the thread
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Validates the request as Generate does (INVALID_ARGUMENT naming the field), then
  // queues it. RESOURCE_EXHAUSTED when the queue is full or the request alone could never
  // fit the KV budget; UNAVAILABLE after Shutdown. Events go to `on_event` until one
  // with finished = true, which is the last.
  absl::StatusOr<RequestId> Submit(GenerationRequest request, EventCallback on_event);

  // Ends the request at the next step boundary: its final event has finish reason
  // kCancelled, and its slot and cache are freed. Unknown or finished ids are ignored.
  void Cancel(RequestId id);

  // Stops admitting (Submit returns UNAVAILABLE), lets queued and running requests finish
  // for up to `grace`, then cancels what is left. Returns when nothing is running and every
  // final event has been delivered (so never call it from an event callback).
  void Shutdown(std::chrono::milliseconds grace);
  // Ends every queued and running request at the next step, as Shutdown does when its grace
  // runs out (e.g. a second SIGTERM during the drain). Stops admitting too.
  void CancelAll();

  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return options_; }

 private:
  using Clock = std::chrono::steady_clock;
  struct Sequence;
  struct Delivery;  // an event and the sequence whose callback gets it

  void Loop();
  // At a step boundary, under the lock: ends the cancelled requests, then moves queued
  // requests into the running batch while a slot and their KV reservation are free.
  void EndCancelled(std::vector<std::unique_ptr<Sequence>>& ended, std::vector<Delivery>& events);
  void Admit();
  // One Forward over the running batch, then a token for each sequence that has read its
  // prompt; sequences that finish move to `ended`, their caches freed.
  void Step(std::vector<std::unique_ptr<Sequence>>& ended, std::vector<Delivery>& events);
  // Ends a sequence (not holding the lock) and returns its final event's delivery.
  Delivery End(Sequence& sequence, FinishReason reason, std::string text, absl::Status status = {});
  using Running = std::vector<std::unique_ptr<Sequence>>;
  // Under the lock: moves a running sequence to `ended`, freeing its cache, slot and KV
  // reservation. Returns the next running one.
  Running::iterator Release(std::vector<std::unique_ptr<Sequence>>& ended, Running::iterator it);

  Model& model_;
  const SchedulerOptions options_;
  const float full_depth_bits_;  // a request's effective bits when it decodes at full depth
  // options_.kv_budget_tokens within the backend's KV pool, in whole blocks of it.
  const int64_t kv_budget_blocks_;
  const int64_t kv_budget_tokens_;

  mutable std::mutex mutex_;
  std::condition_variable wake_;     // the scheduler thread waits here for requests
  std::condition_variable drained_;  // Shutdown waits here for the last final event
  // Guarded by mutex_.
  std::deque<std::unique_ptr<Sequence>> queue_;
  std::vector<RequestId> cancels_;  // taken at the next step boundary
  RequestId next_id_ = 1;
  int live_ = 0;  // submitted requests whose final event has not been delivered yet
  bool accepting_ = true, cancel_all_ = false, stop_ = false;
  SchedulerStats stats_;
  int64_t kv_blocks_reserved_ = 0;
  // Scheduler thread only (admission also holds the lock).
  Running running_;
  std::vector<float> logits_;

  std::thread thread_;  // last: starts once everything above is ready
};

}  // namespace grinqh
