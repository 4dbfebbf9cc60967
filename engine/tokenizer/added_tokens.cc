#include "engine/tokenizer/added_tokens.h"

#include "engine/base/unicode.h"

namespace grinqh::tokenizer_internal {

// ---------------------------------------------------------------------------------------
// AddedTokenTrie

void AddedTokenTrie::Add(std::string_view content, size_t token_index) {
  if (content.empty()) return;
  first_bytes_[static_cast<unsigned char>(content[0])] = true;
  uint32_t node = 0;
  for (char ch : content) node = ChildOrCreate(node, static_cast<unsigned char>(ch));
  nodes_[node].token = static_cast<int64_t>(token_index);
}

std::optional<AddedTokenTrie::Match> AddedTokenTrie::LongestAt(std::string_view text,
                                                               size_t pos) const {
  if (!first_bytes_[static_cast<unsigned char>(text[pos])]) return std::nullopt;
  std::optional<Match> best;
  uint32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const std::optional<uint32_t> child = Child(node, static_cast<unsigned char>(text[i]));
    if (!child) break;
    node = *child;
    if (nodes_[node].token >= 0) {
      best = Match{static_cast<size_t>(nodes_[node].token), i + 1 - pos};
    }
  }
  return best;
}

std::optional<uint32_t> AddedTokenTrie::Child(uint32_t node, unsigned char byte) const {
  for (const auto& [b, child] : nodes_[node].children) {
    if (b == byte) return child;
  }
  return std::nullopt;
}

uint32_t AddedTokenTrie::ChildOrCreate(uint32_t node, unsigned char byte) {
  if (std::optional<uint32_t> child = Child(node, byte)) return *child;
  const auto created = static_cast<uint32_t>(nodes_.size());
  nodes_.emplace_back();
  nodes_[node].children.emplace_back(byte, created);
  return created;
}

// ---------------------------------------------------------------------------------------
// Splitting text on added tokens

namespace {

// The character just before text[end] (text[0..end) is valid UTF-8).
char32_t CharBefore(std::string_view text, size_t end) {
  size_t start = end - 1;
  while (start > 0 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
  return DecodeUtf8(text, start).code_point;
}

// HF's single_word rule: the match may not touch a word character on either side.
bool IsStandaloneWord(std::string_view text, size_t begin, size_t end) {
  if (begin > 0 && IsWordCharacter(CharBefore(text, begin))) return false;
  if (end < text.size() && IsWordCharacter(DecodeUtf8(text, end).code_point)) return false;
  return true;
}

// Start of the whitespace run that ends at text[end], not going below lowest.
size_t WhitespaceRunStart(std::string_view text, size_t lowest, size_t end) {
  while (end > lowest && IsUnicodeWhitespace(CharBefore(text, end))) {
    size_t start = end - 1;
    while (start > lowest && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80) --start;
    end = start;
  }
  return end;
}

// End of the whitespace run that starts at text[begin].
size_t WhitespaceRunEnd(std::string_view text, size_t begin) {
  while (begin < text.size()) {
    const Utf8Char c = DecodeUtf8(text, begin);
    if (!IsUnicodeWhitespace(c.code_point)) break;
    begin += c.length;
  }
  return begin;
}

}  // namespace

// Follows HF's AddedVocabulary::find_matches: scan for leftmost-longest matches, drop
// those that break single_word, widen the rest over whitespace for lstrip/rstrip.
void SplitOnAddedTokens(std::string_view text, const AddedTokenTrie& trie,
                        const std::vector<AddedToken>& tokens, std::vector<Segment>& out) {
  if (trie.empty()) {
    if (!text.empty()) out.push_back({text, std::nullopt});
    return;
  }
  size_t gap_start = 0;  // where the text not yet emitted begins
  size_t pos = 0;
  while (pos < text.size()) {
    const std::optional<AddedTokenTrie::Match> match = trie.LongestAt(text, pos);
    if (!match) {
      ++pos;
      continue;
    }
    const AddedToken& token = tokens[match->token_index];
    size_t begin = pos;
    size_t end = pos + match->length;
    pos = end;  // like find_iter, never look inside a match again, even a discarded one
    if (token.single_word && !IsStandaloneWord(text, begin, end)) continue;
    if (token.lstrip) begin = WhitespaceRunStart(text, gap_start, begin);
    if (token.rstrip) end = WhitespaceRunEnd(text, end);
    if (gap_start < begin) out.push_back({text.substr(gap_start, begin - gap_start), std::nullopt});
    out.push_back({text.substr(begin, end - begin), token.id});
    gap_start = end;
    pos = end;
  }
  if (gap_start < text.size()) out.push_back({text.substr(gap_start), std::nullopt});
}

}  // namespace grinqh::tokenizer_internal
