#include "server/inference_service.h"

#include <chrono>
#include <memory>

#include "absl/strings/str_cat.h"
#include "engine/tokenizer/chat_template.h"
#include "engine/base/unicode.h"
#include "server/generate_request.h"
#include "server/request_relay.h"

namespace grinqh {
namespace {

using Clock = std::chrono::steady_clock;

v1::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength: return v1::FINISH_REASON_LENGTH;
    case FinishReason::kStop: return v1::FINISH_REASON_STOP;
    case FinishReason::kEos: return v1::FINISH_REASON_EOS;
    case FinishReason::kCancelled: return v1::FINISH_REASON_CANCELLED;
  }
  return v1::FINISH_REASON_UNSPECIFIED;
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

InferenceService::InferenceService(Model& model, Scheduler& scheduler, const ServerConfig& config,
                                   ServingMetrics& metrics, std::function<float()> auto_bits, Options options)
    : model_(model),
      scheduler_(scheduler),
      config_(config),
      metrics_(metrics),
      auto_bits_(std::move(auto_bits)),
      options_(std::move(options)) {}

grpc::Status InferenceService::Generate(grpc::ServerContext* context, const v1::GenerateRequest* proto,
                                        grpc::ServerWriter<v1::GenerateResponse>* writer) {
  const auto arrival = Clock::now();
  RequestOutcome outcome;
  outcome.tier = proto->has_tier() ? proto->tier() : proto->has_target_bits() ? "" : config_.default_tier;
  const auto finish = [&](grpc::Status status) {
    FinishRequest(RequestApi::kGrpc, options_.model_name, arrival, static_cast<absl::StatusCode>(status.error_code()),
                  metrics_, outcome);
    return status;
  };

  absl::StatusOr<ResolvedRequest> resolved =
      ResolveGenerateRequest(*proto, model_, options_.model_name, config_, auto_bits_());
  if (!resolved.ok()) return finish(ToGrpcStatus(resolved.status()));
  const std::string request_id =
      proto->request_id().empty() ? absl::StrCat("req-", next_request_number_++) : proto->request_id();
  outcome.request_id = request_id;

  auto queue = std::make_shared<EventQueue>();
  absl::StatusOr<Scheduler::RequestId> id =
      scheduler_.Submit(resolved->request, [queue](const StreamEvent& event) { queue->Push(event); });
  if (!id.ok()) return finish(ToGrpcStatus(id.status()));

  bool client_gone = false;
  for (;;) {
    std::optional<StreamEvent> event = queue->Pop(kCancelPollInterval);
    if (!event) {
      if (!client_gone && context->IsCancelled()) {
        client_gone = true;
        scheduler_.Cancel(*id);
      }
      continue;
    }
    if (event->finished && !event->status.ok()) {  // the engine failed this request
      return finish(grpc::Status(grpc::StatusCode::INTERNAL, std::string(event->status.message())));
    }
    if (!client_gone && (!event->tokens.empty() || !event->text.empty() || event->finished)) {
      v1::GenerateResponse response;
      response.set_request_id(request_id);
      response.set_text(event->text);
      response.mutable_token_ids()->Add(event->tokens.begin(), event->tokens.end());
      for (const TokenLogprobs& lp : event->logprobs) {
        v1::TokenLogprob& out = *response.add_logprobs();
        out.set_token_id(lp.token);
        out.set_logprob(lp.logprob);
        for (const auto& [token, logprob] : lp.top) {
          v1::TopLogprob& top = *out.add_top_logprobs();
          top.set_token_id(token);
          top.set_logprob(logprob);
        }
      }
      if (event->finished) {
        response.set_finish_reason(ToProto(event->finish_reason));
        v1::Usage& usage = *response.mutable_usage();
        usage.set_prompt_tokens(static_cast<uint32_t>(event->usage.prompt_tokens));
        usage.set_completion_tokens(static_cast<uint32_t>(event->usage.completion_tokens));
        usage.set_time_to_first_token_seconds(event->usage.time_to_first_token_seconds);
        usage.set_queue_seconds(event->usage.queue_seconds);
        usage.set_effective_bits(event->usage.effective_bits);
        usage.set_tier(resolved->tier);
        if (!resolved->precision_note.empty()) usage.set_precision_note(resolved->precision_note);
      }
      if (!writer->Write(response)) {
        client_gone = true;
        scheduler_.Cancel(*id);
      }
    }
    if (event->finished) {
      RecordFinal(*event, outcome);
      break;
    }
  }
  if (client_gone) {
    const bool deadline_passed = context->deadline() <= std::chrono::system_clock::now();
    return finish(deadline_passed ? grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "deadline exceeded")
                                  : grpc::Status(grpc::StatusCode::CANCELLED, "cancelled by the client"));
  }
  return finish(grpc::Status::OK);
}

grpc::Status InferenceService::Tokenize(grpc::ServerContext*, const v1::TokenizeRequest* request,
                                        v1::TokenizeResponse* response) {
  if (absl::Status s = CheckServedModel("model", request->model(), options_.model_name); !s.ok()) return ToGrpcStatus(s);
  if (absl::Status s = CheckPromptBytes("text", request->text().size(), config_.limits); !s.ok()) return ToGrpcStatus(s);
  const Tokenizer* tokenizer = model_.tokenizer();
  if (tokenizer == nullptr) {
    return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION, "this model has no tokenizer.json");
  }
  if (!IsValidUtf8(request->text())) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "text: is not valid UTF-8");
  for (int32_t id : tokenizer->Encode(request->text(), request->add_special_tokens())) {
    response->add_ids(id);
    const std::string bytes = tokenizer->TokenBytes(id);
    response->add_token_bytes(bytes);
    // The deprecated string field stays filled for old clients, as valid UTF-8 so that no
    // client's parser rejects the message.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
    response->add_tokens(SanitizeUtf8(bytes));
#pragma GCC diagnostic pop
  }
  return grpc::Status::OK;
}

void InferenceService::DescribeModel(v1::ModelInfo& info) const {
  const ModelConfig& c = model_.config();
  info.set_name(options_.model_name);
  info.set_architecture(std::string(ArchitectureName(c.arch)));
  info.set_context_length(static_cast<uint32_t>(c.max_position_embeddings));
  info.set_vocab_size(static_cast<uint32_t>(c.vocab_size));
  info.set_num_layers(static_cast<uint32_t>(c.num_layers));
  info.set_hidden_size(static_cast<uint32_t>(c.hidden_size));
  const bool graded = model_.max_decode_bits() > 0;
  info.set_stored_bits(graded ? static_cast<uint32_t>(model_.max_decode_bits()) : 16u);
  info.set_graded_decoding(graded);
  info.set_quantization(graded ? "grinqh" : "none");
  for (const Tier& tier : config_.tiers) {
    v1::Tier& t = *info.add_tiers();
    t.set_name(tier.name);
    t.set_bits(graded ? (tier.autoscaled ? auto_bits_() : tier.bits) : kFullDepthBits);
  }
  if (model_.tokenizer() != nullptr) {
    if (absl::StatusOr<ChatTemplate> chat = ChatTemplate::ForTokenizer(*model_.tokenizer()); chat.ok()) {
      info.set_chat_format(std::string(chat->name()));
    }
  }
  info.set_backend(options_.backend);
}

grpc::Status InferenceService::ListModels(grpc::ServerContext*, const v1::ListModelsRequest*,
                                          v1::ListModelsResponse* response) {
  DescribeModel(*response->add_models());
  return grpc::Status::OK;
}

grpc::Status InferenceService::GetModel(grpc::ServerContext*, const v1::GetModelRequest* request,
                                        v1::ModelInfo* response) {
  if (absl::Status s = CheckServedModel("name", request->name(), options_.model_name); !s.ok()) return ToGrpcStatus(s);
  DescribeModel(*response);
  return grpc::Status::OK;
}

}  // namespace grinqh
