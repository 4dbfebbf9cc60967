#include <iostream>

#include "engine/base/status_macros.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "server/commands.h"
#include "server/flags.h"

namespace grinqh {
namespace {

absl::Status RunTokenize(const Flags& flags) {
  if (flags.Has("model") == flags.Has("tokenizer")) {
    return absl::InvalidArgumentError("give exactly one of --model and --tokenizer");
  }
  if (!flags.Has("text")) return absl::InvalidArgumentError("--text is required");
  GRINQH_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                          flags.Has("model") ? Tokenizer::FromDirectory(*flags.String("model"))
                                             : Tokenizer::FromFile(*flags.String("tokenizer")));
  const std::vector<int32_t> ids = tokenizer->Encode(*flags.String("text"), flags.Has("add-special-tokens"));
  std::cout << nlohmann::json(ids).dump() << std::endl;
  return absl::OkStatus();
}

}  // namespace

const Command& TokenizeCommand() {
  static const Command command{{"tokenize", "print the token ids of a text as JSON",
                                {{"model", "DIR", "the model directory whose tokenizer to use (or --tokenizer)"},
                                 {"tokenizer", "FILE", "a tokenizer.json"},
                                 {"text", "TEXT", "the text to tokenize (required)"},
                                 {"add-special-tokens", "", "add the tokens the tokenizer adds around a text (BOS)"}}},
                               RunTokenize};
  return command;
}

}  // namespace grinqh
