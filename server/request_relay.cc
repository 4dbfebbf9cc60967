#include "server/request_relay.h"

namespace grinqh {

void RecordFinal(const StreamEvent& event, RequestOutcome& outcome) {
  outcome.prompt_tokens = event.usage.prompt_tokens;
  outcome.completion_tokens = event.usage.completion_tokens;
  outcome.time_to_first_token_s = event.usage.time_to_first_token_seconds;
  outcome.queue_time_s = event.usage.queue_seconds;
  outcome.finish_reason = std::string(FinishReasonName(event.finish_reason));
}

void FinishOutcome(std::chrono::steady_clock::time_point arrival, RequestOutcome& outcome) {
  outcome.duration_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - arrival).count();
}

}  // namespace grinqh
