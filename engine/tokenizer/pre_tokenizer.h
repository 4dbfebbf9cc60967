// Pre-tokenization: splitting text into the pieces that BPE merges one at a time, by the
// regexes of HF's Split and ByteLevel pre-tokenizers (run by PCRE2).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace grinqh::tokenizer_internal {

// A compiled PCRE2 pattern, immutable and so safe to share between threads.
class Regex;

// Compiles pattern with Unicode semantics (\s, \p{L}, (?i) as Oniguruma has them in HF);
// INVALID_ARGUMENT naming the pattern when it does not compile.
absl::StatusOr<std::shared_ptr<const Regex>> CompileRegex(std::string_view pattern);

// One splitting pass over every current piece. HF's Split(Isolated) is {regex}; its
// ByteLevel pre-tokenizer is {add_prefix_space, GPT-2 regex if use_regex}.
struct PreTokenizerStep {
  std::shared_ptr<const Regex> regex;  // null: no splitting
  bool remove_matches = false;         // Split behavior "Removed": drop matches, keep gaps
  bool add_prefix_space = false;       // prepend ' ' to pieces that do not start with one
};

// Replaces pieces (valid UTF-8) by what step splits them into.
void ApplyStep(const PreTokenizerStep& step, std::vector<std::string>& pieces);

}  // namespace grinqh::tokenizer_internal
