// A Generate RPC's request, checked and turned into the engine's GenerationRequest: the
// input tokenized (or the chat template applied), server defaults and limits filled in,
// and the precision chosen from the tier, the explicit target or the autoscaler.
//
// Every malformed field is INVALID_ARGUMENT with a message that starts with the field's
// name; asking a model for what it cannot do (chat without a template, text without a
// tokenizer) is FAILED_PRECONDITION; another model's name is NOT_FOUND.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "engine/serving/generator.h"
#include "engine/serving/model.h"
#include "grinqh/v1/inference.pb.h"
#include "server/config.h"

namespace grinqh {

struct ResolvedRequest {
  GenerationRequest request;
  std::string tier;            // the tier used; empty for an explicit target_bits
  std::string precision_note;  // why the request did not get the precision it asked for
};

// `served_name`: the model's name in the API. `auto_bits`: what the autoscaled tier decodes
// at now (kFullDepthBits = full depth).
absl::StatusOr<ResolvedRequest> ResolveGenerateRequest(const v1::GenerateRequest& proto, const Model& model,
                                                       const std::string& served_name, const ServerConfig& config,
                                                       float auto_bits);

// INVALID_ARGUMENT naming `field` and limits.max_prompt_bytes when `bytes` exceed it: the
// check before any text is tokenized.
absl::Status CheckPromptBytes(const char* field, size_t bytes, const LimitsSection& limits);

// NOT_FOUND naming `field` unless `requested` is empty (the default model) or `served`.
absl::Status CheckServedModel(const char* field, const std::string& requested, const std::string& served);

}  // namespace grinqh
