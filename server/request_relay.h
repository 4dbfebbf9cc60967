// What the gRPC and the HTTP handlers share to relay one request from the scheduler: the
// queue its events cross from the scheduler thread to the handler's, and the outcome the
// metrics record when it ends.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <string_view>

#include "engine/serving/scheduler.h"
#include "server/serving_metrics.h"

namespace grinqh {

// How often a waiting handler looks whether its client is still there.
inline constexpr auto kCancelPollInterval = std::chrono::milliseconds(10);

// The scheduler's events for one call. Held by a shared_ptr, because a handler that gives up
// early must not leave the scheduler a dangling callback.
struct EventQueue {
  std::mutex mutex;
  std::condition_variable ready;
  std::deque<StreamEvent> events;

  void Push(const StreamEvent& event) {
    {
      std::lock_guard lock(mutex);
      events.push_back(event);
    }
    ready.notify_one();
  }
  // The next event, or nothing after `timeout`.
  std::optional<StreamEvent> Pop(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex);
    if (!ready.wait_for(lock, timeout, [&] { return !events.empty(); })) return std::nullopt;
    StreamEvent event = std::move(events.front());
    events.pop_front();
    return event;
  }
};

// Copies the final event's usage and finish reason into the outcome.
void RecordFinal(const StreamEvent& event, RequestOutcome& outcome);
// Where a request came in, for its log line.
enum class RequestApi { kGrpc, kHttp };

// Ends a request's bookkeeping once: sets its status code and its duration from `arrival`
// (the metrics derive the per-token and phase times), records its metrics and logs its line.
void FinishRequest(RequestApi api, std::string_view model, std::chrono::steady_clock::time_point arrival,
                   absl::StatusCode code, ServingMetrics& metrics, RequestOutcome& outcome);

}  // namespace grinqh
