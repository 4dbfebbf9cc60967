// Reading a Hugging Face tokenizer.json into the parts the tokenizer runs on, refusing
// with a message naming the field whatever we could not reproduce exactly; and reading
// tokenizer_config.json's BOS/EOS settings.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/tokenizer/added_tokens.h"
#include "engine/tokenizer/bpe.h"
#include "engine/tokenizer/pre_tokenizer.h"
#include "engine/base/string_map.h"

namespace grinqh::tokenizer_internal {

// Everything a tokenizer.json describes, checked and indexed for encoding and decoding.
struct TokenizerParts {
  bool nfc = false;  // the normalizer is NFC (otherwise there is none)
  std::vector<PreTokenizerStep> pre_tokenizer;
  BpeModel bpe;

  std::vector<AddedToken> added_tokens;
  StringMap<int32_t> added_by_content;
  AddedTokenTrie raw_trie;         // normalized=false tokens, matched before normalization
  AddedTokenTrie normalized_trie;  // normalized=true tokens, matched after it
  // The same without the special tokens: for text whose special-token look-alikes are text.
  AddedTokenTrie raw_text_trie;
  AddedTokenTrie normalized_text_trie;

  // By id: the index of its added token in added_tokens, or -1 for model tokens.
  std::vector<int32_t> added_index;

  // The single-sequence template: ids around the text when add_special_tokens is set.
  std::vector<int32_t> prefix_ids;
  std::vector<int32_t> suffix_ids;
  std::optional<int32_t> template_bos;  // the template's leading special token
};

// Parses tokenizer.json; INVALID_ARGUMENT naming the offending field when it is malformed
// or uses something not supported.
absl::StatusOr<TokenizerParts> ParseTokenizerJson(std::string_view json_text);

// What tokenizer_config.json says about BOS and EOS.
struct TokenizerConfig {
  bool add_bos_token = false;
  bool add_eos_token = false;
  std::optional<std::string> bos_token;  // the token's content, if the file names one
  std::optional<std::string> eos_token;
  // The Jinja chat template (the one named "default" when the file lists several).
  std::optional<std::string> chat_template;
};

// Parses tokenizer_config.json; INVALID_ARGUMENT when it is not a JSON object.
absl::StatusOr<TokenizerConfig> ParseTokenizerConfig(std::string_view json_text);

}  // namespace grinqh::tokenizer_internal
