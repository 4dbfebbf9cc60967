#include <iostream>

#include "engine/base/status_macros.h"
#include "engine/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "server/commands.h"
#include "server/flags.h"

namespace grinqh {

absl::Status RunTokenize(const std::vector<std::string>& args) {
  GRINQH_ASSIGN_OR_RETURN(const Flags flags, Flags::Parse(args, {"model", "tokenizer", "text"}, {"add-special-tokens"}));
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

}  // namespace grinqh
