// Continuous (iteration-level) batching of generation requests over one model.
//
// One scheduler thread owns the backend. Every step it builds one Forward batch from the
// running sequences: each decoding sequence contributes its last token, and sequences
// still reading their prompt contribute a chunk of it (chunked prefill), so a long prompt
// never stalls the decodes running beside it. Requests join the batch at any step (from a
// bounded admission queue) and leave it the step they finish or are cancelled, and their
// KV cache is freed then. The KV budget is counted in tokens: a sequence reserves
// prompt + max_tokens positions when it is admitted to the running batch.
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
#include "engine/generator.h"
#include "engine/model.h"

namespace grinqh {

struct SchedulerOptions {
  int max_batch_size = 32;           // sequences in the running batch
  int max_queue = 64;                // requests waiting for a slot; more are refused
  int prefill_chunk = 256;           // prompt tokens one sequence feeds per step
  int max_step_tokens = 512;         // tokens in one Forward (decodes first, then prefill chunks)
  int64_t kv_budget_tokens = 65536;  // cached positions reserved by all running sequences
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
  std::string text;             // the text those tokens complete: whole UTF-8 characters,
                                // held back while it may be the start of a stop string
  bool finished = false;
  FinishReason finish_reason = FinishReason::kLength;  // when finished
  Usage usage;
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
  // for up to `grace`, then cancels what is left. Returns when nothing is running.
  void Shutdown(std::chrono::milliseconds grace);

  SchedulerStats stats() const;
  const SchedulerOptions& options() const { return options_; }

 private:
  struct Sequence;
  void Loop();
  // ... (implementation state: queue, running sequences, mutex, condition variable)

  Model& model_;
  const SchedulerOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::thread thread_;
};

}  // namespace grinqh
