#include "server/openai_completions.h"

#include <chrono>
#include <ctime>
#include <memory>

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "server/generate_request.h"
#include "server/openai_response.h"
#include "server/request_relay.h"

namespace grinqh {
namespace {

using Clock = std::chrono::steady_clock;
using json = nlohmann::json;

// One submitted request, from the handler to its last event. Its destructor cancels a request
// that has not finished (the client went away, or httplib never streamed the body) and
// records the outcome once.
class Completion {
 public:
  Completion(OpenAiServing& serving, OpenAiRequest request, ResolvedRequest resolved, RequestOutcome outcome,
             Clock::time_point arrival, CompletionHeader header)
      : serving_(serving),
        request_(std::move(request)),
        resolved_(std::move(resolved)),
        outcome_(std::move(outcome)),
        arrival_(arrival),
        header_(std::move(header)),
        queue_(std::make_shared<EventQueue>()) {}
  ~Completion() {
    if (!finished_) {
      serving_.scheduler.Cancel(id_);
      Record(absl::StatusCode::kCancelled);
    }
  }
  Completion(const Completion&) = delete;
  Completion& operator=(const Completion&) = delete;

  // Refused (queue full, shutting down): recorded, and the status returned.
  absl::Status Submit() {
    absl::StatusOr<Scheduler::RequestId> id =
        serving_.scheduler.Submit(resolved_.request, [queue = queue_](const StreamEvent& event) { queue->Push(event); });
    if (!id.ok()) {
      Record(id.status().code());
      return id.status();
    }
    id_ = *id;
    finished_ = false;
    return absl::OkStatus();
  }
  const OpenAiRequest& request() const { return request_; }

  // Waits for the whole completion and answers with one body.
  void RespondWhole(httplib::Response& response) {
    std::string text;
    for (;;) {
      std::optional<StreamEvent> event = queue_->Pop(kCancelPollInterval);
      if (!event) continue;
      text += event->text;
      Collect(*event);
      if (!event->finished) continue;
      Finish(*event);
      if (!event->status.ok()) {
        RespondWithError(ToOpenAiError(absl::InternalError(event->status.message())), response);
        return;
      }
      response.set_content(DumpJson(CompletionBody(header_, text, event->finish_reason, UsageOf(*event), TakeLogprobs())),
                           "application/json");
      return;
    }
  }

  // Relays the events as server-sent events until the last, or until the client is gone
  // (false: httplib closes the connection, and the destructor cancels the request).
  bool Stream(httplib::DataSink& sink) {
    const auto send = [&sink](const std::string& data) { return sink.write(data.data(), data.size()); };
    const bool usage_field = request_.include_usage;
    if (header_.endpoint == OpenAiEndpoint::kChatCompletions && !send(SseEvent(RoleChunkBody(header_, usage_field)))) {
      return false;
    }
    for (;;) {
      std::optional<StreamEvent> event = queue_->Pop(kCancelPollInterval);
      if (!event) {
        if (!sink.is_writable()) return false;
        continue;
      }
      Collect(*event);
      if (event->finished) {
        Finish(*event);
        if (!event->status.ok()) {  // the engine failed it: OpenAI's streams carry errors as an event
          send(SseEvent(ErrorBody(ToOpenAiError(absl::InternalError(event->status.message())))));
        } else {
          send(SseEvent(ChunkBody(header_, event->text, &event->finish_reason, usage_field, TakeLogprobs())));
          if (request_.include_usage) send(SseEvent(UsageChunkBody(header_, UsageOf(*event))));
        }
        send(std::string(kSseDone));
        sink.done();
        return true;
      }
      if (event->text.empty()) continue;  // a token whose text is held back (its logprobs wait too)
      if (!send(SseEvent(ChunkBody(header_, event->text, nullptr, usage_field, TakeLogprobs())))) return false;
    }
  }

 private:
  void Collect(const StreamEvent& event) {
    pending_logprobs_.insert(pending_logprobs_.end(), event.logprobs.begin(), event.logprobs.end());
  }
  // The logprobs of the tokens since the last body that carried some; null when not asked.
  json TakeLogprobs() {
    if (!request_.generate.logprobs()) return nullptr;
    const Tokenizer* tokenizer = serving_.model.tokenizer();
    const auto token_bytes = [tokenizer](int32_t id) { return tokenizer ? tokenizer->TokenBytes(id) : std::string(); };
    json body = LogprobsBody(header_.endpoint, pending_logprobs_, token_bytes, text_offset_);
    pending_logprobs_.clear();
    return body;
  }
  json UsageOf(const StreamEvent& event) const {
    return UsageBody(event.usage, resolved_.tier, resolved_.precision_note);
  }
  void Finish(const StreamEvent& event) {
    finished_ = true;
    RecordFinal(event, outcome_);
    Record(event.status.ok() ? absl::StatusCode::kOk : absl::StatusCode::kInternal);
  }
  void Record(absl::StatusCode code) {
    FinishRequest(RequestApi::kHttp, serving_.model_name, arrival_, code, serving_.metrics, outcome_);
  }

  OpenAiServing& serving_;
  const OpenAiRequest request_;
  const ResolvedRequest resolved_;
  RequestOutcome outcome_;
  const Clock::time_point arrival_;
  const CompletionHeader header_;
  std::shared_ptr<EventQueue> queue_;
  Scheduler::RequestId id_ = 0;
  bool finished_ = true;  // until Submit succeeds there is nothing to cancel
  std::vector<TokenLogprobs> pending_logprobs_;
  size_t text_offset_ = 0;  // completions' text_offset of the next token
};

}  // namespace

void RespondWithError(const OpenAiError& error, httplib::Response& http_response) {
  http_response.status = error.http_status;
  http_response.set_content(DumpJson(ErrorBody(error)), "application/json");
}

void HandleCompletion(OpenAiServing& serving, OpenAiEndpoint endpoint, const httplib::Request& http_request,
                      httplib::Response& http_response) {
  const auto arrival = Clock::now();
  RequestOutcome outcome;
  const auto refuse = [&](const absl::Status& status, const OpenAiRequest* request) {
    FinishRequest(RequestApi::kHttp, serving.model_name, arrival, status.code(), serving.metrics, outcome);
    RespondWithError(ToOpenAiError(status, request), http_response);
  };
  const json body = json::parse(http_request.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded()) return refuse(absl::InvalidArgumentError("body: is not valid JSON"), nullptr);
  absl::StatusOr<OpenAiRequest> request = ParseOpenAiRequest(body, endpoint);
  if (!request.ok()) return refuse(request.status(), nullptr);
  const v1::GenerateRequest& generate = request->generate;
  outcome.tier = generate.has_tier() ? generate.tier() : generate.has_target_bits() ? "" : serving.config.default_tier;
  absl::StatusOr<ResolvedRequest> resolved =
      ResolveGenerateRequest(generate, serving.model, serving.model_name, serving.config, serving.auto_bits());
  if (!resolved.ok()) return refuse(resolved.status(), &*request);

  CompletionHeader header;
  header.endpoint = endpoint;
  header.id = absl::StrCat(endpoint == OpenAiEndpoint::kChatCompletions ? "chatcmpl-" : "cmpl-",
                           serving.next_completion++);
  header.created = static_cast<int64_t>(std::time(nullptr));
  header.model = serving.model_name;
  outcome.request_id = header.id;
  const bool stream = request->stream;
  auto completion = std::make_shared<Completion>(serving, *std::move(request), *std::move(resolved),
                                                 std::move(outcome), arrival, std::move(header));
  if (absl::Status status = completion->Submit(); !status.ok()) {
    return RespondWithError(ToOpenAiError(status, &completion->request()), http_response);
  }
  if (!stream) return completion->RespondWhole(http_response);
  http_response.set_header("Cache-Control", "no-cache");
  http_response.set_header("X-Accel-Buffering", "no");  // proxies: pass each event on at once
  http_response.set_chunked_content_provider("text/event-stream",
                                             [completion](size_t, httplib::DataSink& sink) {
                                               return completion->Stream(sink);
                                             });
}

}  // namespace grinqh
