// One strict JSON reader for every JSON file and section the engine reads: safetensors
// headers and indexes, .grinqh metadata, config.json, generation_config.json and
// tokenizer_config.json (tokenizer.json has its own streaming reader).
//
// Exposes nlohmann::json, which grinqh_engine links privately: include this header only
// from the engine's .cc files.
#pragma once

#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace grinqh {

// The deepest nesting a document may have. nlohmann's dump (and so every error message
// that shows a value) recurses once per level, so without a bound a hostile file of a
// million '[' would overflow the stack. Real files nest a few levels.
inline constexpr int kMaxJsonDepth = 128;

// Parses `text`, refusing what nlohmann would accept silently: a key repeated within one
// object, at any depth (nlohmann keeps the last, so a second entry could hide the first),
// and nesting deeper than kMaxJsonDepth. INVALID_ARGUMENT otherwise, saying `what` was
// parsed ("config.json", "header", ...) and where: "<what> is not valid JSON: <nlohmann's
// message, with line and column>", "<what> has the key "k" twice (at /a/k)" or "<what>
// nests deeper than 128 levels (at /a/0/0/...)".
absl::StatusOr<nlohmann::json> ParseStrictJson(std::string_view text, std::string_view what);

}  // namespace grinqh
