// Byte-level BPE tokenizer read from a Hugging Face tokenizer.json (Llama 3, Qwen3).
//
// Reproduces Hugging Face `tokenizers`: NFC normalizer, Split-regex + ByteLevel
// pre-tokenizer, BPE merges by rank, added tokens matched in the raw text first,
// the ByteLevel decoder. Encoding never inserts special tokens unless asked.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace grinqh {

class Tokenizer {
 public:
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::filesystem::path& path);
  // tokenizer.json text, and optionally tokenizer_config.json text for the BOS policy.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(std::string_view json_text,
                                                             std::string_view tokenizer_config_json = {});
  // tokenizer.json in model_dir, with the BOS policy of tokenizer_config.json where present.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromDirectory(const std::filesystem::path& model_dir);
  ~Tokenizer();

  // Text to ids. add_special_tokens applies the post-processor's single-sequence template
  // (e.g. Llama 3's BOS), or tokenizer_config.json's add_bos_token when it has none.
  // parse_special_tokens: special tokens written in the text (`<|im_end|>`) become their ids,
  // as Hugging Face does by default; false encodes them as the plain text they look like
  // (HF's split_special_tokens), for text that must not forge them, like chat messages.
  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens = false,
                              bool parse_special_tokens = true) const;
  // Ids to text (the ByteLevel decoder). Invalid UTF-8 from partial tokens is replaced by U+FFFD.
  std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;
  // The raw bytes a token stands for (after byte-level decoding); empty for an unknown id.
  std::string TokenBytes(int32_t id) const;

  int vocab_size() const;  // largest id + 1, added tokens included
  std::optional<int32_t> TokenToId(std::string_view token) const;
  bool IsSpecial(int32_t id) const;
  std::optional<int32_t> bos_id() const;
  // tokenizer_config.json's Jinja chat template, when it has one (see chat_template.h).
  const std::optional<std::string>& chat_template() const;

  struct Impl;

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Streaming detokenization: feed ids one by one, get back only text that is complete,
// valid UTF-8. Bytes of a character split across tokens are held until it completes.
class IncrementalDecoder {
 public:
  explicit IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = true)
      : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}
  // The new complete text this id finishes (may be empty).
  std::string Push(int32_t id);
  // Whatever is held back at the end of the stream, invalid bytes replaced by U+FFFD.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::string pending_;  // bytes of an incomplete UTF-8 sequence
};

}  // namespace grinqh
