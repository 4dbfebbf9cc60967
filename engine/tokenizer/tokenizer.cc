// Byte-level BPE as Hugging Face `tokenizers` runs it for Llama 3 and Qwen3.
//
// Encoding pipeline, in HF's order:
//   1. added tokens with normalized=false are cut out of the raw text;
//   2. each remaining piece is normalized (NFC or nothing);
//   3. added tokens with normalized=true are cut out of the normalized pieces;
//   4. the pre-tokenizer splits the rest (Split regex and/or ByteLevel's GPT-2 regex);
//   5. each pre-token is BPE-merged by rank.
// Internally everything stays in raw bytes: the vocabulary's byte-level spellings
// ("Ġhello") are mapped back to bytes (" hello") once at load time, so the ByteLevel
// pre-tokenizer and decoder become no-ops instead of per-call re-encodings.

#include "engine/tokenizer/tokenizer.h"

#include <mutex>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/file_util.h"
#include "engine/base/status_macros.h"
#include "engine/tokenizer/tokenizer_json.h"
#include "engine/base/unicode.h"

namespace grinqh {

using tokenizer_internal::ApplyStep;
using tokenizer_internal::ParseTokenizerConfig;
using tokenizer_internal::ParseTokenizerJson;
using tokenizer_internal::PreTokenizerStep;
using tokenizer_internal::Segment;
using tokenizer_internal::SplitOnAddedTokens;
using tokenizer_internal::StringMap;
using tokenizer_internal::TokenizerConfig;
using tokenizer_internal::TokenizerParts;

namespace {

// Pre-tokens longer than this are not cached: they are rare and would bloat the cache.
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCacheEntries = 100000;

}  // namespace

// ---------------------------------------------------------------------------------------
// Tokenizer::Impl

// What tokenizer.json describes, plus what the Tokenizer keeps beside it.
struct Tokenizer::Impl : TokenizerParts {
  explicit Impl(TokenizerParts parts) : TokenizerParts(std::move(parts)) {}

  std::optional<int32_t> config_bos;  // tokenizer_config.json's bos_token
  std::optional<std::string> chat_template;

  mutable std::mutex cache_mutex;
  mutable StringMap<std::vector<int32_t>> word_cache;  // pre-token bytes -> their BPE ids

  // What an id decodes to; nullopt for an id that is no token.
  std::optional<std::string_view> Bytes(int32_t id) const {
    if (id < 0 || static_cast<size_t>(id) >= added_index.size()) return std::nullopt;
    if (added_index[id] >= 0) return added_tokens[added_index[id]].content;
    if (!bpe.tokens.Has(id)) return std::nullopt;
    return bpe.tokens.Get(id);
  }
  bool IsSpecial(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < added_index.size() && added_index[id] >= 0 &&
           added_tokens[added_index[id]].special;
  }

  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens, bool parse_special_tokens) const;
  void EncodePlain(std::string_view text, std::vector<int32_t>& ids) const;
  void EncodeWord(std::string_view word, std::vector<int32_t>& ids) const;
};

std::vector<int32_t> Tokenizer::Impl::Encode(std::string_view input, bool add_special_tokens,
                                             bool parse_special_tokens) const {
  // Rust strings are always valid UTF-8; sanitizing first keeps the regex engine and the
  // normalizer on the same footing and makes garbage input harmless.
  const std::string text = SanitizeUtf8(input);
  std::vector<int32_t> ids;
  if (add_special_tokens) ids = prefix_ids;

  std::vector<Segment> raw_segments;
  SplitOnAddedTokens(text, parse_special_tokens ? raw_trie : raw_text_trie, added_tokens, raw_segments);
  for (const Segment& raw : raw_segments) {
    if (raw.added_id) {
      ids.push_back(*raw.added_id);
      continue;
    }
    const std::string normalized = nfc ? NormalizeNfc(raw.text) : std::string(raw.text);
    std::vector<Segment> segments;
    SplitOnAddedTokens(normalized, parse_special_tokens ? normalized_trie : normalized_text_trie, added_tokens,
                       segments);
    for (const Segment& segment : segments) {
      if (segment.added_id) {
        ids.push_back(*segment.added_id);
      } else {
        EncodePlain(segment.text, ids);
      }
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), suffix_ids.begin(), suffix_ids.end());
  return ids;
}

void Tokenizer::Impl::EncodePlain(std::string_view text, std::vector<int32_t>& ids) const {
  std::vector<std::string> pieces{std::string(text)};
  for (const PreTokenizerStep& step : pre_tokenizer) ApplyStep(step, pieces);
  for (const std::string& piece : pieces) EncodeWord(piece, ids);
}

void Tokenizer::Impl::EncodeWord(std::string_view word, std::vector<int32_t>& ids) const {
  const bool cacheable = word.size() <= kMaxCachedWordBytes;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (auto it = word_cache.find(word); it != word_cache.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t first = ids.size();
  bpe.Tokenize(word, ids);
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mutex);
    if (word_cache.size() >= kMaxCacheEntries) word_cache.clear();  // crude but bounded
    word_cache.emplace(std::string(word), std::vector<int32_t>(ids.begin() + first, ids.end()));
  }
}

namespace {

// ---------------------------------------------------------------------------------------
// tokenizer_config.json

// Where add_bos_token / add_eos_token ask for a token, checks that it exists.
absl::StatusOr<std::optional<int32_t>> RequiredConfigToken(
    bool required, const char* flag, const char* key, const std::optional<std::string>& content,
    const Tokenizer& tokenizer) {
  std::optional<int32_t> id = content ? tokenizer.TokenToId(*content) : std::nullopt;
  if (required && !id) {
    return absl::InvalidArgumentError(
        content ? absl::StrCat(flag, " is true but ", key, " \"", *content,
                               "\" is not a token of tokenizer.json")
                : absl::StrCat(flag, " is true but there is no ", key));
  }
  return id;
}

// Applies tokenizer_config.json's add_bos_token / add_eos_token where the template does
// not already insert those tokens (transformers' behaviour for Llama-style configs).
absl::Status ApplyTokenizerConfig(std::string_view config_text, const Tokenizer& tokenizer,
                                  Tokenizer::Impl& impl) {
  GRINQH_ASSIGN_OR_RETURN(const TokenizerConfig config, ParseTokenizerConfig(config_text));
  GRINQH_ASSIGN_OR_RETURN(const std::optional<int32_t> bos,
                          RequiredConfigToken(config.add_bos_token, "add_bos_token", "bos_token",
                                              config.bos_token, tokenizer));
  GRINQH_ASSIGN_OR_RETURN(const std::optional<int32_t> eos,
                          RequiredConfigToken(config.add_eos_token, "add_eos_token", "eos_token",
                                              config.eos_token, tokenizer));

  impl.config_bos = bos;
  impl.chat_template = config.chat_template;
  if (config.add_bos_token && (impl.prefix_ids.empty() || impl.prefix_ids.front() != *bos)) {
    impl.prefix_ids.insert(impl.prefix_ids.begin(), *bos);
  }
  if (config.add_eos_token && (impl.suffix_ids.empty() || impl.suffix_ids.back() != *eos)) {
    impl.suffix_ids.push_back(*eos);
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Tokenizer

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view json_text,
                                                                std::string_view tokenizer_config_json) {
  absl::StatusOr<TokenizerParts> parts = ParseTokenizerJson(json_text);
  if (!parts.ok()) return WithContext(parts.status(), "tokenizer.json");
  std::unique_ptr<Tokenizer> tokenizer(new Tokenizer(std::make_unique<Impl>(*std::move(parts))));
  if (!tokenizer_config_json.empty()) {
    absl::Status status = ApplyTokenizerConfig(tokenizer_config_json, *tokenizer, *tokenizer->impl_);
    if (!status.ok()) return WithContext(status, "tokenizer_config.json");
  }
  return tokenizer;
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::filesystem::path& path) {
  GRINQH_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(path));
  absl::StatusOr<TokenizerParts> parts = ParseTokenizerJson(text);
  if (!parts.ok()) return WithContext(parts.status(), path.string());
  return std::unique_ptr<Tokenizer>(new Tokenizer(std::make_unique<Impl>(*std::move(parts))));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromDirectory(
    const std::filesystem::path& model_dir) {
  GRINQH_ASSIGN_OR_RETURN(std::unique_ptr<Tokenizer> tokenizer,
                          FromFile(model_dir / "tokenizer.json"));

  const std::filesystem::path config_path = model_dir / "tokenizer_config.json";
  std::error_code error;
  if (!std::filesystem::exists(config_path, error)) return tokenizer;
  GRINQH_ASSIGN_OR_RETURN(const std::string text, ReadFileToString(config_path));
  absl::Status status = ApplyTokenizerConfig(text, *tokenizer, *tokenizer->impl_);
  if (!status.ok()) return WithContext(status, config_path.string());
  return tokenizer;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special_tokens,
                                       bool parse_special_tokens) const {
  return impl_->Encode(text, add_special_tokens, parse_special_tokens);
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  std::string bytes;
  for (int32_t id : ids) {
    if (skip_special_tokens && impl_->IsSpecial(id)) continue;
    // Ids that are no token are skipped, as HF does.
    if (std::optional<std::string_view> token = impl_->Bytes(id)) bytes.append(*token);
  }
  return SanitizeUtf8(bytes);
}

std::string Tokenizer::TokenBytes(int32_t id) const {
  return std::string(impl_->Bytes(id).value_or(std::string_view()));
}

int Tokenizer::vocab_size() const { return static_cast<int>(impl_->added_index.size()); }

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (auto it = impl_->added_by_content.find(token); it != impl_->added_by_content.end()) {
    return it->second;
  }
  // Model tokens are looked up by their vocabulary spelling ("Ġhello"), as in HF.
  return impl_->bpe.FindSpelling(token);
}

bool Tokenizer::IsSpecial(int32_t id) const { return impl_->IsSpecial(id); }

const std::optional<std::string>& Tokenizer::chat_template() const { return impl_->chat_template; }

std::optional<int32_t> Tokenizer::bos_id() const {
  return impl_->template_bos ? impl_->template_bos : impl_->config_bos;
}

// ---------------------------------------------------------------------------------------
// IncrementalDecoder

std::string IncrementalDecoder::Push(int32_t id) {
  if (skip_special_tokens_ && tokenizer_.IsSpecial(id)) return "";
  pending_ += tokenizer_.TokenBytes(id);
  // Everything up to an unfinished trailing character is final: invalid bytes in it can
  // never become valid, so replacing them now gives what Decode of the whole would.
  const size_t complete = CompleteUtf8PrefixLength(pending_);
  std::string text = SanitizeUtf8(std::string_view(pending_).substr(0, complete));
  pending_.erase(0, complete);
  return text;
}

std::string IncrementalDecoder::Flush() {
  std::string text = SanitizeUtf8(pending_);
  pending_.clear();
  return text;
}

}  // namespace grinqh
