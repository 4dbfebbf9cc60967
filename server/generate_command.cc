#include <iostream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "engine/serving/generator.h"
#include "engine/serving/model.h"
#include "engine/base/status_macros.h"
#include "nlohmann/json.hpp"
#include "server/commands.h"
#include "server/flags.h"

namespace grinqh {
namespace {

absl::StatusOr<std::vector<int32_t>> ParseIds(const std::string& text) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(part, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("--prompt-ids: '", part, "' is not a token id"));
    }
    ids.push_back(id);
  }
  return ids;
}

absl::Status RunGenerate(const Flags& flags) {
  if (!flags.Has("model")) return absl::InvalidArgumentError("--model is required");
  if (flags.Has("prompt") == flags.Has("prompt-ids")) {
    return absl::InvalidArgumentError("give exactly one of --prompt and --prompt-ids");
  }

  GenerationRequest request;
  ModelOptions options;
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("max-tokens", 1, 1 << 20, request.max_tokens));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("top-k", 0, 1 << 30, request.sampling.top_k));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("seed", 0, LLONG_MAX, request.sampling.seed));
  GRINQH_RETURN_IF_ERROR(flags.ReadInt("threads", 0, 1024, options.num_threads));
  if (auto backend = flags.String("backend")) options.name = *backend;
  GRINQH_RETURN_IF_ERROR(flags.ReadFloat("temperature", request.sampling.temperature));
  GRINQH_RETURN_IF_ERROR(flags.ReadFloat("top-p", request.sampling.top_p));
  GRINQH_RETURN_IF_ERROR(flags.ReadFloat("bits", request.decode_bits));
  GRINQH_RETURN_IF_ERROR(request.sampling.Validate());
  if (auto stop = flags.String("stop")) request.stop.push_back(*stop);

  GRINQH_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, Model::Load(*flags.String("model"), options));
  const Tokenizer* tokenizer = model->tokenizer();
  if (auto ids = flags.String("prompt-ids")) {
    GRINQH_ASSIGN_OR_RETURN(request.prompt_ids, ParseIds(*ids));
  } else {
    if (tokenizer == nullptr) {
      return absl::FailedPreconditionError("this model has no tokenizer.json: give --prompt-ids instead of --prompt");
    }
    request.prompt_ids = tokenizer->Encode(*flags.String("prompt"), /*add_special_tokens=*/!flags.Has("no-bos"));
  }

  const bool json = flags.Has("json");
  auto result = Generate(*model, request, [&](int32_t token, std::string_view text) {
    if (json) {
      nlohmann::json line = {{"text", std::string(text)}};
      if (token >= 0) line["token"] = token;
      std::cout << line.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
    } else {
      std::cout << text << std::flush;
    }
  });
  if (!result.ok()) return result.status();

  const double prefill_tps = static_cast<double>(request.prompt_ids.size()) / result->prefill_seconds;
  const double decode_tps = result->tokens.size() > 1
                                ? static_cast<double>(result->tokens.size() - 1) / result->decode_seconds
                                : 0.0;
  if (json) {
    nlohmann::json summary = {{"prompt_ids", request.prompt_ids},
                              {"token_ids", result->tokens},
                              {"text", result->text},
                              {"finish_reason", std::string(FinishReasonName(result->finish_reason))},
                              {"prompt_tokens", request.prompt_ids.size()},
                              {"completion_tokens", result->tokens.size()},
                              {"prefill_tokens_per_second", prefill_tps},
                              {"decode_tokens_per_second", decode_tps}};
    std::cout << summary.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) << std::endl;
  } else {
    std::cout << std::endl;
    std::cerr << absl::StrCat("[", request.prompt_ids.size(), " prompt tokens, ", result->tokens.size(),
                              " generated, finish: ", std::string(FinishReasonName(result->finish_reason)), "; prefill ",
                              static_cast<int>(prefill_tps), " tok/s, decode ", static_cast<int>(decode_tps),
                              " tok/s]")
              << std::endl;
  }
  return absl::OkStatus();
}

}  // namespace

const Command& GenerateCommand() {
  static const Command command{{"generate", "stream a completion from a model",
                                {kModelFlag,
                                 {"prompt", "TEXT", "the prompt, as text (or --prompt-ids)"},
                                 {"prompt-ids", "1,2,3", "the prompt, as token ids"},
                                 {"max-tokens", "N", "tokens to generate at most (128)"},
                                 {"temperature", "T", "sampling temperature (0: greedy)"},
                                 {"top-k", "K", "sample among the K likeliest tokens (0: all)"},
                                 {"top-p", "P", "sample among the likeliest tokens of total probability P (1)"},
                                 {"seed", "S", "sampling seed"},
                                 {"stop", "TEXT", "stop when the completion produces TEXT"},
                                 kThreadsFlag,
                                 kBackendFlag,
                                 kDecodeBitsFlag,
                                 {"no-bos", "", "do not add the tokenizer's beginning-of-sequence token"},
                                 {"json", "", "one JSON object per token, then a summary, instead of text"}}},
                               RunGenerate};
  return command;
}

}  // namespace grinqh
