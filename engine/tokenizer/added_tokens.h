// Added tokens (special tokens and the like) and cutting them out of text before the
// pre-tokenizer sees it, following HF's AddedVocabulary.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace grinqh::tokenizer_internal {

// One entry of tokenizer.json's "added_tokens", with HF's matching options.
struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool single_word = false;
  bool lstrip = false;
  bool rstrip = false;
  bool normalized = false;
};

// A byte trie over added-token contents answering "which token is the longest one that
// starts here" - HF's aho-corasick LeftmostLongest, applied position by position.
class AddedTokenTrie {
 public:
  AddedTokenTrie() : nodes_(1) {}

  // Makes content findable as token_index (an index into the token list); "" is ignored.
  void Add(std::string_view content, size_t token_index);

  bool empty() const { return nodes_.size() == 1; }

  struct Match {
    size_t token_index;
    size_t length;
  };
  // The longest added token that text[pos..] starts with; pos < text.size().
  std::optional<Match> LongestAt(std::string_view text, size_t pos) const;

 private:
  struct Node {
    std::vector<std::pair<unsigned char, uint32_t>> children;  // few per node: linear scan
    int64_t token = -1;
  };

  std::optional<uint32_t> Child(uint32_t node, unsigned char byte) const;
  uint32_t ChildOrCreate(uint32_t node, unsigned char byte);

  std::vector<Node> nodes_;
  std::array<bool, 256> first_bytes_{};  // lets the scan skip most positions at once
};

// A stretch of the input: either text still to tokenize, or one added token's id.
struct Segment {
  std::string_view text;
  std::optional<int32_t> added_id;
};

// Cuts the added tokens of trie (indexes into tokens) out of text, valid UTF-8, appending
// the pieces in order to out. Empty gaps are not emitted.
void SplitOnAddedTokens(std::string_view text, const AddedTokenTrie& trie,
                        const std::vector<AddedToken>& tokens, std::vector<Segment>& out);

}  // namespace grinqh::tokenizer_internal
