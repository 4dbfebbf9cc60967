#include "engine/tokenizer/pre_tokenizer.h"

#include <array>
#include <cstddef>
#include <cstdint>
#include <utility>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/unicode.h"

namespace grinqh::tokenizer_internal {

// A compiled pattern in UTF + Unicode-property mode (so \s, \p{L}, \p{N} and (?i) follow
// Unicode as Oniguruma does in HF), JIT-compiled where available. Immutable once built,
// hence safe to share between threads; match data is allocated per call.
class Regex {
 public:
  explicit Regex(pcre2_code* code) : code_(code) {}  // takes ownership of code
  ~Regex() { pcre2_code_free(code_); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Calls on_match(begin, end) for each successive non-empty, non-overlapping match.
  // text must be valid UTF-8 (the caller sanitizes input once up front).
  template <typename OnMatch>
  void ForEachMatch(std::string_view text, OnMatch&& on_match) const {
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> match_data(
        pcre2_match_data_create_from_pattern(code_, nullptr), &pcre2_match_data_free);
    if (match_data == nullptr) return;
    const auto subject = reinterpret_cast<PCRE2_SPTR>(text.data());
    uint32_t options = PCRE2_NO_UTF_CHECK;
    size_t offset = 0;
    while (offset < text.size()) {
      int rc = pcre2_match(code_, subject, text.size(), offset, options, match_data.get(), nullptr);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT && (options & PCRE2_NO_JIT) == 0) {
        // The JIT's fixed stack can run out on huge inputs; the interpreter uses the heap.
        options |= PCRE2_NO_JIT;
        continue;
      }
      if (rc < 0) return;  // no (further) match, or a resource limit: the rest is one gap
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data.get());
      const size_t begin = ovector[0];
      const size_t end = ovector[1];
      if (end == begin) {  // skip an empty match by one character, as Rust's find_iter does
        offset = begin + DecodeUtf8(text, begin).length;
        continue;
      }
      on_match(begin, end);
      offset = end;
    }
  }

 private:
  pcre2_code* code_;
};

absl::StatusOr<std::shared_ptr<const Regex>> CompileRegex(std::string_view pattern) {
  int error = 0;
  PCRE2_SIZE error_offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
  if (code == nullptr) {
    std::array<PCRE2_UCHAR, 256> message{};
    pcre2_get_error_message(error, message.data(), message.size());
    return absl::InvalidArgumentError(
        absl::StrCat("pre_tokenizer regex /", std::string(pattern), "/ does not compile: ",
                     reinterpret_cast<const char*>(message.data()), " at offset ", error_offset));
  }
  // JIT failure (e.g. an unsupported CPU) only costs speed: the interpreter still runs.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return std::make_shared<const Regex>(code);
}

void ApplyStep(const PreTokenizerStep& step, std::vector<std::string>& pieces) {
  std::vector<std::string> next;
  next.reserve(pieces.size());
  for (std::string& piece : pieces) {
    if (step.add_prefix_space && !piece.empty() && piece.front() != ' ') {
      piece.insert(piece.begin(), ' ');
    }
    if (step.regex == nullptr) {
      next.push_back(std::move(piece));
      continue;
    }
    // Isolated: matches and the gaps between them each become a piece.
    size_t gap_start = 0;
    step.regex->ForEachMatch(piece, [&](size_t begin, size_t end) {
      if (gap_start < begin) next.push_back(piece.substr(gap_start, begin - gap_start));
      if (!step.remove_matches) next.push_back(piece.substr(begin, end - begin));
      gap_start = end;
    });
    if (gap_start < piece.size()) next.push_back(piece.substr(gap_start));
  }
  pieces = std::move(next);
}

}  // namespace grinqh::tokenizer_internal
