#include "server/request_relay.h"

#include "server/log.h"

namespace grinqh {

void RecordFinal(const StreamEvent& event, RequestOutcome& outcome) {
  outcome.prompt_tokens = event.usage.prompt_tokens;
  outcome.completion_tokens = event.usage.completion_tokens;
  outcome.time_to_first_token_s = event.usage.time_to_first_token_seconds;
  outcome.queue_time_s = event.usage.queue_seconds;
  outcome.effective_bits = event.usage.effective_bits;
  outcome.finish_reason = std::string(FinishReasonName(event.finish_reason));
}

void FinishRequest(RequestApi api, std::string_view model, std::chrono::steady_clock::time_point arrival,
                   absl::StatusCode code, ServingMetrics& metrics, RequestOutcome& outcome) {
  outcome.code = code;
  outcome.duration_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - arrival).count();
  metrics.RecordRequest(outcome);
  // Times in seconds, as the metrics give them; the bits as delivered (0: none decoded).
  LogLine(LogLevel::kInfo, "request finished",
          {{"request_id", outcome.request_id},
           {"api", api == RequestApi::kGrpc ? "grpc" : "http"},
           {"model", model},
           {"tier", outcome.tier},
           {"bits", outcome.effective_bits},
           {"prompt_tokens", outcome.prompt_tokens},
           {"completion_tokens", outcome.completion_tokens},
           {"ttft_s", outcome.time_to_first_token_s},
           {"queue_s", outcome.queue_time_s},
           {"duration_s", outcome.duration_s},
           {"finish_reason", outcome.finish_reason.empty() ? "none" : outcome.finish_reason},
           {"status", absl::StatusCodeToString(code)},
           {"status_code", static_cast<int>(code)}});
}

}  // namespace grinqh
