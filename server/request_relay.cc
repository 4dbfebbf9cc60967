#include "server/request_relay.h"

namespace grinqh {

void RecordUsage(const Usage& usage, RequestOutcome& outcome) {
  outcome.prompt_tokens = usage.prompt_tokens;
  outcome.completion_tokens = usage.completion_tokens;
  outcome.time_to_first_token_s = usage.time_to_first_token_seconds;
}

void FinishOutcome(std::chrono::steady_clock::time_point arrival, RequestOutcome& outcome) {
  outcome.duration_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - arrival).count();
  if (outcome.completion_tokens > 1) {
    outcome.time_per_output_token_s = (outcome.duration_s - outcome.time_to_first_token_s) /
                                      static_cast<double>(outcome.completion_tokens - 1);
  }
}

}  // namespace grinqh
