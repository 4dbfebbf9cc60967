#include "engine/tokenizer/tokenizer_json.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <utility>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/base/json.h"
#include "engine/base/status_macros.h"
#include "engine/base/unicode.h"

namespace grinqh::tokenizer_internal {
namespace {

using json = nlohmann::json;

// GPT-2's split regex, which HF's ByteLevel pre-tokenizer applies when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// This abseil build has its own string_view type, which std::string_view does not convert to.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Errors name the offending field; FromJson / FromFile prefix the file they came from.
absl::Status Invalid(std::string_view what) { return absl::InvalidArgumentError(AbslView(what)); }

// The "type" field of a component, or "" when absent or not a string.
std::string TypeOf(const json& component) {
  if (!component.is_object()) return "";
  auto it = component.find("type");
  return it != component.end() && it->is_string() ? it->get<std::string>() : "";
}

bool BoolField(const json& object, const char* key, bool fallback) {
  auto it = object.find(key);
  return it != object.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

// ---------------------------------------------------------------------------------------
// Streaming tokenizer.json in

struct VocabEntry {
  std::string spelling;
  json value;  // should be an integer id; checked by LoadVocab
};

struct MergeEntry {
  std::string left;
  std::string right;
};

// A SAX handler for json::sax_parse that builds the usual json document for everything
// except model.vocab and model.merges, which it streams into flat lists instead. Those
// two are nearly all of the file (Qwen3: 151K entries each), and as a json document
// they took longer to build and free than all the rest of loading.
class TokenizerJsonReader {
 public:
  json root;
  std::optional<std::vector<VocabEntry>> vocab;   // set when model.vocab is an object
  std::optional<std::vector<MergeEntry>> merges;  // set when model.merges is a list
  std::string error;                              // why the parse was stopped

  bool null() { return Value(nullptr); }
  bool boolean(bool value) { return Value(value); }
  bool number_integer(json::number_integer_t value) { return Value(value); }
  bool number_unsigned(json::number_unsigned_t value) { return Value(value); }
  bool number_float(json::number_float_t value, const json::string_t&) { return Value(value); }
  bool string(json::string_t& value) { return Value(value); }
  bool binary(json::binary_t& value) { return Value(json::binary(value)); }

  bool key(json::string_t& key) {
    key_ = key;
    return true;
  }

  bool start_object(std::size_t) {
    if (mode_ != Mode::kDocument) return Value(json::object());  // refused in the lists
    if (AtModelField("vocab")) {
      mode_ = Mode::kVocab;
      vocab.emplace();
      return true;
    }
    const bool is_model = stack_.size() == 1 && stack_[0]->is_object() && key_ == "model";
    json* object = Insert(json::object());
    if (is_model) model_ = object;
    stack_.push_back(object);
    return true;
  }

  bool end_object() {
    if (mode_ == Mode::kVocab) {
      mode_ = Mode::kDocument;
    } else {
      stack_.pop_back();
    }
    return true;
  }

  bool start_array(std::size_t) {
    switch (mode_) {
      case Mode::kMerges:
        mode_ = Mode::kMergePair;
        pair_.clear();
        return true;
      case Mode::kVocab:
      case Mode::kMergePair:
        return Value(json::array());  // refused
      case Mode::kDocument:
        break;
    }
    if (AtModelField("merges")) {
      mode_ = Mode::kMerges;
      merges.emplace();
      return true;
    }
    stack_.push_back(Insert(json::array()));
    return true;
  }

  bool end_array() {
    switch (mode_) {
      case Mode::kMergePair:
        if (pair_.size() != 2) return BadMerge(json(pair_).dump());
        merges->push_back({std::move(pair_[0]), std::move(pair_[1])});
        mode_ = Mode::kMerges;
        return true;
      case Mode::kMerges:
        mode_ = Mode::kDocument;
        return true;
      case Mode::kVocab:
      case Mode::kDocument:
        stack_.pop_back();
        return true;
    }
    return true;
  }

  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) {
    error = absl::StrCat("not valid JSON: ", e.what());
    return false;
  }

 private:
  enum class Mode { kDocument, kVocab, kMerges, kMergePair };

  bool AtModelField(std::string_view name) const {
    return model_ != nullptr && !stack_.empty() && stack_.back() == model_ && key_ == name;
  }

  // Puts a value where the parse is: the root, the end of an array or the current key.
  json* Insert(json value) {
    if (stack_.empty()) {
      root = std::move(value);
      return &root;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(value));
      return &parent.back();
    }
    json& slot = parent[key_];
    slot = std::move(value);
    return &slot;
  }

  bool Value(json value) {
    switch (mode_) {
      case Mode::kDocument:
        Insert(std::move(value));
        return true;
      case Mode::kVocab:
        if (value.is_structured()) {
          error = absl::StrCat("model.vocab[\"", key_, "\"] is not a token id");
          return false;
        }
        vocab->push_back({key_, std::move(value)});
        return true;
      case Mode::kMerges:
        return value.is_string() ? MergeString(value.get_ref<const std::string&>())
                                 : BadMerge(value.dump());
      case Mode::kMergePair:
        if (!value.is_string()) return BadMerge(value.dump());
        pair_.push_back(std::move(value.get_ref<std::string&>()));
        return true;
    }
    return true;
  }

  // Older files spell a merge "left right"; the parts themselves never hold a space.
  bool MergeString(const std::string& text) {
    const size_t space = text.find(' ');
    if (space == std::string::npos || text.find(' ', space + 1) != std::string::npos) {
      return BadMerge(json(text).dump());
    }
    merges->push_back({text.substr(0, space), text.substr(space + 1)});
    return true;
  }

  bool BadMerge(std::string_view what) {
    error = absl::StrCat("model.merges[", merges->size(), "] is ", AbslView(what),
                         ", expected \"left right\" or [\"left\", \"right\"]");
    return false;
  }

  Mode mode_ = Mode::kDocument;
  std::vector<json*> stack_;  // the open objects and arrays of the document
  std::string key_;           // the latest object key
  json* model_ = nullptr;     // root["model"] once started
  std::vector<std::string> pair_;  // the merge pair being read
};

// ---------------------------------------------------------------------------------------
// Loading tokenizer.json, one function per component.

absl::Status LoadNormalizer(const json& normalizer, TokenizerParts& parts) {
  if (normalizer.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(normalizer);
  if (type == "NFC") {
    parts.nfc = true;
    return absl::OkStatus();
  }
  if (type == "Sequence") {
    auto it = normalizer.find("normalizers");
    if (it == normalizer.end() || !it->is_array()) {
      return Invalid("normalizer Sequence has no \"normalizers\" list");
    }
    for (const json& member : *it) {
      GRINQH_RETURN_IF_ERROR(LoadNormalizer(member, parts));
    }
    return absl::OkStatus();
  }
  return Invalid(absl::StrCat("normalizer type \"", type.empty() ? normalizer.dump() : type,
                              "\" is not supported (only null, NFC or a Sequence of NFC)"));
}

// The regex of a Split pre-tokenizer: {"Regex": "..."} or a literal {"String": "..."}.
absl::StatusOr<std::string> SplitPattern(const json& split) {
  auto pattern = split.find("pattern");
  if (pattern == split.end() || !pattern->is_object()) {
    return Invalid("pre_tokenizer Split has no \"pattern\" object");
  }
  if (auto regex = pattern->find("Regex"); regex != pattern->end() && regex->is_string()) {
    return regex->get<std::string>();
  }
  if (auto literal = pattern->find("String"); literal != pattern->end() && literal->is_string()) {
    // In PCRE2 a backslash before any ASCII non-alphanumeric character means that
    // character literally, so escaping all of them quotes the string.
    std::string quoted;
    for (char ch : literal->get_ref<const std::string&>()) {
      const auto byte = static_cast<unsigned char>(ch);
      if (byte < 0x80 && !std::isalnum(byte)) quoted.push_back('\\');
      quoted.push_back(ch);
    }
    return quoted;
  }
  return Invalid("pre_tokenizer Split pattern must be {\"Regex\": ...} or {\"String\": ...}");
}

absl::Status LoadSplit(const json& split, TokenizerParts& parts) {
  GRINQH_ASSIGN_OR_RETURN(const std::string pattern, SplitPattern(split));
  if (BoolField(split, "invert", false)) {
    return Invalid("pre_tokenizer Split with \"invert\": true is not supported");
  }
  const auto behavior = split.find("behavior");
  const std::string name =
      behavior != split.end() && behavior->is_string() ? behavior->get<std::string>() : "";
  PreTokenizerStep step;
  if (name == "Removed") {
    step.remove_matches = true;
  } else if (name != "Isolated") {
    return Invalid(absl::StrCat("pre_tokenizer Split behavior \"", name,
                                "\" is not supported (only Isolated or Removed)"));
  }
  GRINQH_ASSIGN_OR_RETURN(step.regex, CompileRegex(pattern));
  parts.pre_tokenizer.push_back(std::move(step));
  return absl::OkStatus();
}

absl::Status LoadByteLevelPreTokenizer(const json& byte_level, TokenizerParts& parts) {
  PreTokenizerStep step;
  step.add_prefix_space = BoolField(byte_level, "add_prefix_space", true);
  if (BoolField(byte_level, "use_regex", true)) {
    GRINQH_ASSIGN_OR_RETURN(step.regex, CompileRegex(kGpt2Pattern));
  }
  // The byte-to-character mapping itself needs no step: we work on raw bytes throughout.
  if (step.regex != nullptr || step.add_prefix_space) parts.pre_tokenizer.push_back(step);
  return absl::OkStatus();
}

// Loads one pre-tokenizer (recursing into Sequence); sets saw_byte_level when it meets
// the ByteLevel step that byte-level BPE requires.
absl::Status LoadPreTokenizer(const json& pre_tokenizer, TokenizerParts& parts,
                              bool& saw_byte_level) {
  const std::string type = TypeOf(pre_tokenizer);
  if (type == "Sequence") {
    auto it = pre_tokenizer.find("pretokenizers");
    if (it == pre_tokenizer.end() || !it->is_array()) {
      return Invalid("pre_tokenizer Sequence has no \"pretokenizers\" list");
    }
    for (const json& member : *it) {
      GRINQH_RETURN_IF_ERROR(LoadPreTokenizer(member, parts, saw_byte_level));
    }
    return absl::OkStatus();
  }
  if (type == "Split") return LoadSplit(pre_tokenizer, parts);
  if (type == "ByteLevel") {
    saw_byte_level = true;
    return LoadByteLevelPreTokenizer(pre_tokenizer, parts);
  }
  return Invalid(absl::StrCat("pre_tokenizer type \"",
                              type.empty() ? pre_tokenizer.dump() : type,
                              "\" is not supported (only Split, ByteLevel or a Sequence of them)"));
}

absl::Status LoadVocab(const std::vector<VocabEntry>& vocab, BpeModel& bpe) {
  size_t id_count = 0;
  size_t total_bytes = 0;
  for (const VocabEntry& entry : vocab) {
    const json& id = entry.value;
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > kMaxTokenId) {
      return Invalid(absl::StrCat("model.vocab[\"", entry.spelling, "\"] = ", id.dump(),
                                  " is not a token id in [0, ", kMaxTokenId, "]"));
    }
    id_count = std::max(id_count, static_cast<size_t>(id.get<int64_t>()) + 1);
    total_bytes += entry.spelling.size();
  }
  bpe.tokens.Reserve(id_count, total_bytes);
  bpe.index.Reserve(vocab.size());
  bpe.byte_ids.fill(-1);
  for (const VocabEntry& entry : vocab) {
    const auto id = static_cast<int32_t>(entry.value.get<int64_t>());
    if (bpe.tokens.Has(id)) {
      return Invalid(absl::StrCat("model.vocab gives id ", id, " to two tokens (one is \"",
                                  entry.spelling, "\")"));
    }
    if (std::optional<std::string> bytes = ByteLevelToBytes(entry.spelling)) {
      bpe.tokens.Set(id, *bytes);
      bpe.index.Insert(*bytes, id, bpe.tokens);
      if (bytes->size() == 1) bpe.byte_ids[static_cast<unsigned char>((*bytes)[0])] = id;
    } else {
      // Like HF's ByteLevel decoder, a token that is not byte-level decodes to its text.
      bpe.tokens.Set(id, entry.spelling);
      bpe.unmappable_to_id.emplace(entry.spelling, id);
    }
  }
  return absl::OkStatus();
}

absl::Status LoadMerges(const std::vector<MergeEntry>& merges, BpeModel& bpe) {
  if (merges.size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return Invalid("model.merges is too long");
  }
  bpe.merges.Reserve(merges.size());
  std::string joined;
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const MergeEntry& merge = merges[rank];
    joined.assign(merge.left).append(merge.right);
    std::array<int32_t, 3> ids{};
    const std::array<std::string_view, 3> parts = {merge.left, merge.right, joined};
    for (size_t i = 0; i < parts.size(); ++i) {
      std::optional<int32_t> id = bpe.FindSpelling(parts[i]);
      if (!id) {
        return Invalid(absl::StrCat("model.merges[", rank, "] (\"", merge.left, " ", merge.right,
                                    "\") refers to \"", AbslView(parts[i]),
                                    "\", which is not in model.vocab"));
      }
      ids[i] = *id;
    }
    bpe.merges.Insert(MergeTable::Key(ids[0], ids[1]),
                      MergeTarget{static_cast<int32_t>(rank), ids[2]});
  }
  return absl::OkStatus();
}

absl::Status LoadModel(const json& root, const TokenizerJsonReader& reader, BpeModel& bpe) {
  auto model = root.find("model");
  if (model == root.end() || !model->is_object()) return Invalid("no \"model\" object");
  const std::string type = TypeOf(*model);
  if (type != "BPE") {
    return Invalid(absl::StrCat("model type \"", type,
                                "\" is not supported (only BPE, as Llama 3 and Qwen3 use)"));
  }
  if (BoolField(*model, "byte_fallback", false)) {
    return Invalid("model.byte_fallback is not supported (byte-level BPE does not need it)");
  }
  for (const char* affix : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    auto it = model->find(affix);
    const bool empty = it == model->end() || it->is_null() ||
                       (it->is_string() && it->get_ref<const std::string&>().empty());
    if (!empty) return Invalid(absl::StrCat("model.", affix, " ", it->dump(), " is not supported"));
  }
  // "dropout" is a training-time regularizer; inference always merges deterministically.
  bpe.ignore_merges = BoolField(*model, "ignore_merges", false);

  // The reader streamed vocab and merges out of the document when they had the right
  // shape; if they are still in it, they had the wrong one.
  if (!reader.vocab) {
    return Invalid(model->contains("vocab") ? "model.vocab must be an object of token -> id"
                                            : "model has no \"vocab\"");
  }
  if (!reader.merges) {
    return Invalid(model->contains("merges") ? "model.merges must be a list"
                                             : "model has no \"merges\"");
  }
  GRINQH_RETURN_IF_ERROR(LoadVocab(*reader.vocab, bpe));
  GRINQH_RETURN_IF_ERROR(LoadMerges(*reader.merges, bpe));

  if (auto unk = model->find("unk_token"); unk != model->end() && unk->is_string()) {
    bpe.unk_id = bpe.FindSpelling(unk->get_ref<const std::string&>());
    if (!bpe.unk_id) {
      return Invalid(absl::StrCat("model.unk_token ", unk->dump(), " is not in model.vocab"));
    }
  }
  return absl::OkStatus();
}

absl::Status LoadAddedTokens(const json& root, TokenizerParts& parts) {
  auto list = root.find("added_tokens");
  if (list == root.end() || list->is_null()) return absl::OkStatus();
  if (!list->is_array()) return Invalid("\"added_tokens\" must be a list");
  for (size_t i = 0; i < list->size(); ++i) {
    const json& entry = (*list)[i];
    auto id = entry.is_object() ? entry.find("id") : entry.end();
    auto content = entry.is_object() ? entry.find("content") : entry.end();
    if (!entry.is_object() || id == entry.end() || !id->is_number_integer() ||
        id->get<int64_t>() < 0 || id->get<int64_t>() > kMaxTokenId ||
        content == entry.end() || !content->is_string() ||
        content->get_ref<const std::string&>().empty()) {
      return Invalid(absl::StrCat("added_tokens[", i, "] = ", entry.dump(),
                                  " needs an integer \"id\" and a non-empty \"content\""));
    }
    AddedToken token;
    token.id = static_cast<int32_t>(id->get<int64_t>());
    token.content = SanitizeUtf8(content->get_ref<const std::string&>());
    token.special = BoolField(entry, "special", false);
    token.single_word = BoolField(entry, "single_word", false);
    token.lstrip = BoolField(entry, "lstrip", false);
    token.rstrip = BoolField(entry, "rstrip", false);
    token.normalized = BoolField(entry, "normalized", !token.special);
    parts.added_by_content[token.content] = token.id;
    parts.added_tokens.push_back(std::move(token));
  }
  for (size_t i = 0; i < parts.added_tokens.size(); ++i) {
    const AddedToken& token = parts.added_tokens[i];
    if (token.normalized) {
      // Matched against normalized text, so the pattern is normalized the same way.
      const std::string pattern = parts.nfc ? NormalizeNfc(token.content) : token.content;
      parts.normalized_trie.Add(pattern, i);
      if (!token.special) parts.normalized_text_trie.Add(pattern, i);
    } else {
      parts.raw_trie.Add(token.content, i);
      if (!token.special) parts.raw_text_trie.Add(token.content, i);
    }
  }
  return absl::OkStatus();
}

// TemplateProcessing's "single" template: special-token ids before and after "$A".
absl::Status LoadTemplate(const json& processor, TokenizerParts& parts) {
  auto single = processor.find("single");
  auto specials = processor.find("special_tokens");
  if (single == processor.end() || !single->is_array() || specials == processor.end() ||
      !specials->is_object()) {
    return Invalid("post_processor TemplateProcessing needs \"single\" and \"special_tokens\"");
  }
  std::vector<int32_t> prefix, suffix;
  bool saw_sequence = false;
  for (const json& piece : *single) {
    if (piece.is_object() && piece.contains("Sequence")) {
      if (saw_sequence) return Invalid("post_processor single template has two sequences");
      saw_sequence = true;
      continue;
    }
    const json* name = nullptr;
    if (piece.is_object() && piece.contains("SpecialToken")) {
      const json& special = piece["SpecialToken"];
      if (special.is_object() && special.contains("id")) name = &special["id"];
    }
    if (name == nullptr || !name->is_string()) {
      return Invalid(absl::StrCat("post_processor template piece ", piece.dump(),
                                  " is neither a Sequence nor a SpecialToken"));
    }
    auto entry = specials->find(name->get_ref<const std::string&>());
    if (entry == specials->end() || !entry->is_object() || !entry->contains("ids") ||
        !(*entry)["ids"].is_array()) {
      return Invalid(absl::StrCat("post_processor special token ", name->dump(),
                                  " has no ids in \"special_tokens\""));
    }
    for (const json& id : (*entry)["ids"]) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > kMaxTokenId) {
        return Invalid(absl::StrCat("post_processor special token ", name->dump(),
                                    " has a bad id ", id.dump()));
      }
      (saw_sequence ? suffix : prefix).push_back(static_cast<int32_t>(id.get<int64_t>()));
    }
  }
  if (!saw_sequence) return Invalid("post_processor single template has no Sequence");
  if (!prefix.empty()) parts.template_bos = prefix.front();
  parts.prefix_ids.insert(parts.prefix_ids.end(), prefix.begin(), prefix.end());
  parts.suffix_ids.insert(parts.suffix_ids.begin(), suffix.begin(), suffix.end());
  return absl::OkStatus();
}

absl::Status LoadPostProcessor(const json& processor, TokenizerParts& parts) {
  if (processor.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(processor);
  if (type == "ByteLevel") return absl::OkStatus();  // only adjusts offsets, not ids
  if (type == "TemplateProcessing") return LoadTemplate(processor, parts);
  if (type == "Sequence") {
    auto it = processor.find("processors");
    if (it == processor.end() || !it->is_array()) {
      return Invalid("post_processor Sequence has no \"processors\" list");
    }
    for (const json& member : *it) {
      GRINQH_RETURN_IF_ERROR(LoadPostProcessor(member, parts));
    }
    return absl::OkStatus();
  }
  return Invalid(absl::StrCat("post_processor type \"", type.empty() ? processor.dump() : type,
                              "\" is not supported (only TemplateProcessing or ByteLevel)"));
}

absl::Status CheckDecoder(const json& decoder) {
  // null would make HF join byte-level spellings with spaces, which no real byte-level
  // file relies on; decoding bytes is the only sensible reading of it.
  if (decoder.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(decoder);
  if (type == "ByteLevel") return absl::OkStatus();
  if (type == "Sequence") {
    auto it = decoder.find("decoders");
    if (it == decoder.end() || !it->is_array()) {
      return Invalid("decoder Sequence has no \"decoders\" list");
    }
    for (const json& member : *it) {
      GRINQH_RETURN_IF_ERROR(CheckDecoder(member));
    }
    return absl::OkStatus();
  }
  return Invalid(absl::StrCat("decoder type \"", type.empty() ? decoder.dump() : type,
                              "\" is not supported (only ByteLevel)"));
}

// Points each added token's id at it; ids past the model's vocabulary extend the table.
void IndexAddedTokens(TokenizerParts& parts) {
  size_t size = parts.bpe.tokens.id_count();
  for (const AddedToken& token : parts.added_tokens) {
    size = std::max(size, static_cast<size_t>(token.id) + 1);
  }
  parts.added_index.assign(size, -1);
  for (size_t i = 0; i < parts.added_tokens.size(); ++i) {
    parts.added_index[parts.added_tokens[i].id] = static_cast<int32_t>(i);
  }
}

// The post-processor's ids go into every encoding made with special tokens, so each must
// name a token (added or in the model's vocabulary): an id past the table would reach the
// model's embedding lookup.
absl::Status CheckTemplateIds(const TokenizerParts& parts) {
  for (const std::vector<int32_t>* ids : {&parts.prefix_ids, &parts.suffix_ids}) {
    for (const int32_t id : *ids) {
      const bool added = static_cast<size_t>(id) < parts.added_index.size() && parts.added_index[id] >= 0;
      if (!added && !parts.bpe.tokens.Has(id)) {
        return Invalid(absl::StrCat("post_processor special token id ", id, " is not in the vocabulary"));
      }
    }
  }
  return absl::OkStatus();
}

const json& FieldOrNull(const json& root, const char* key) {
  static const json kNull;
  auto it = root.find(key);
  return it == root.end() ? kNull : *it;
}

absl::StatusOr<TokenizerParts> BuildParts(const TokenizerJsonReader& reader) {
  const json& root = reader.root;
  if (!root.is_object()) return Invalid("the top level is not a JSON object");
  TokenizerParts parts;
  GRINQH_RETURN_IF_ERROR(LoadModel(root, reader, parts.bpe));
  GRINQH_RETURN_IF_ERROR(LoadNormalizer(FieldOrNull(root, "normalizer"), parts));

  bool saw_byte_level = false;
  const json& pre_tokenizer = FieldOrNull(root, "pre_tokenizer");
  if (!pre_tokenizer.is_null()) {
    GRINQH_RETURN_IF_ERROR(LoadPreTokenizer(pre_tokenizer, parts, saw_byte_level));
  }
  if (!saw_byte_level) {
    return Invalid("pre_tokenizer has no ByteLevel step; only byte-level BPE is supported");
  }
  GRINQH_RETURN_IF_ERROR(LoadAddedTokens(root, parts));
  GRINQH_RETURN_IF_ERROR(LoadPostProcessor(FieldOrNull(root, "post_processor"), parts));
  GRINQH_RETURN_IF_ERROR(CheckDecoder(FieldOrNull(root, "decoder")));
  IndexAddedTokens(parts);
  GRINQH_RETURN_IF_ERROR(CheckTemplateIds(parts));
  return parts;
}

// tokenizer_config.json's bos_token / eos_token: a string, {"content": ...} or null.
std::optional<std::string> ConfigTokenContent(const json& config, const char* key) {
  auto it = config.find(key);
  if (it == config.end()) return std::nullopt;
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object()) {
    auto content = it->find("content");
    if (content != it->end() && content->is_string()) return content->get<std::string>();
  }
  return std::nullopt;
}

}  // namespace

absl::StatusOr<TokenizerParts> ParseTokenizerJson(std::string_view json_text) {
  try {
    TokenizerJsonReader reader;
    if (!json::sax_parse(json_text, &reader)) {
      return Invalid(reader.error.empty() ? "not valid JSON" : reader.error);
    }
    return BuildParts(reader);
  } catch (const json::exception& e) {
    // The loaders check types before reading; this is a safety net for what they miss.
    return Invalid(e.what());
  }
}

absl::StatusOr<TokenizerConfig> ParseTokenizerConfig(std::string_view json_text) {
  GRINQH_ASSIGN_OR_RETURN(const json config, ParseStrictJson(json_text, "tokenizer config"));
  if (!config.is_object()) return Invalid("not a JSON object");
  TokenizerConfig result;
  result.add_bos_token = BoolField(config, "add_bos_token", false);
  result.add_eos_token = BoolField(config, "add_eos_token", false);
  result.bos_token = ConfigTokenContent(config, "bos_token");
  result.eos_token = ConfigTokenContent(config, "eos_token");
  if (const auto it = config.find("chat_template"); it != config.end()) {
    if (it->is_string()) {
      result.chat_template = it->get<std::string>();
    } else if (it->is_array()) {
      for (const json& entry : *it) {
        if (entry.is_object() && entry.value("name", "") == "default" && entry.contains("template") &&
            entry["template"].is_string()) {
          result.chat_template = entry["template"].get<std::string>();
        }
      }
    } else if (!it->is_null()) {
      return Invalid("chat_template must be a string or a list of named templates");
    }
  }
  return result;
}

}  // namespace grinqh::tokenizer_internal
