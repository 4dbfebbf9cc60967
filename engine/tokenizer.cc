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

#include "engine/tokenizer.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <functional>
#include <limits>
#include <mutex>
#include <queue>
#include <tuple>
#include <unordered_map>
#include <utility>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <nlohmann/json.hpp>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/file_util.h"
#include "engine/unicode.h"

namespace grinqh {
namespace {

using json = nlohmann::json;

// Ids beyond this are refused so a corrupt file cannot make us allocate gigabytes.
constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

// Pre-tokens longer than this are not cached: they are rare and would bloat the cache.
constexpr size_t kMaxCachedWordBytes = 256;
constexpr size_t kMaxCacheEntries = 100000;

// GPT-2's split regex, which HF's ByteLevel pre-tokenizer applies when use_regex is true.
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Hash for unordered maps keyed by std::string that accept std::string_view lookups.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
template <typename V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// This abseil build has its own string_view type, which std::string_view does not convert to.
absl::string_view AbslView(std::string_view s) { return absl::string_view(s.data(), s.size()); }

// Errors name the offending field; FromJson / FromFile prefix the file they came from.
absl::Status Invalid(std::string_view what) { return absl::InvalidArgumentError(AbslView(what)); }

absl::Status WithContext(const absl::Status& status, std::string_view context) {
  return absl::Status(status.code(), absl::StrCat(AbslView(context), ": ", status.message()));
}

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
// Regex (PCRE2)

// A compiled pattern in UTF + Unicode-property mode (so \s, \p{L}, \p{N} and (?i) follow
// Unicode as Oniguruma does in HF), JIT-compiled where available. Immutable once built,
// hence safe to share between threads; match data is allocated per call.
class Regex {
 public:
  static absl::StatusOr<std::shared_ptr<const Regex>> Compile(std::string_view pattern) {
    int error = 0;
    PCRE2_SIZE error_offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_UTF | PCRE2_UCP, &error, &error_offset, nullptr);
    if (code == nullptr) {
      std::array<PCRE2_UCHAR, 256> message{};
      pcre2_get_error_message(error, message.data(), message.size());
      return Invalid(absl::StrCat("pre_tokenizer regex /", AbslView(pattern),
                                  "/ does not compile: ",
                                  reinterpret_cast<const char*>(message.data()), " at offset ",
                                  error_offset));
    }
    // JIT failure (e.g. an unsupported CPU) only costs speed: the interpreter still runs.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
    return std::shared_ptr<const Regex>(new Regex(code));
  }

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
  explicit Regex(pcre2_code* code) : code_(code) {}
  pcre2_code* code_;
};

// ---------------------------------------------------------------------------------------
// Added tokens

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

  void Add(std::string_view content, size_t token_index) {
    if (content.empty()) return;
    first_bytes_[static_cast<unsigned char>(content[0])] = true;
    uint32_t node = 0;
    for (char ch : content) node = ChildOrCreate(node, static_cast<unsigned char>(ch));
    nodes_[node].token = static_cast<int64_t>(token_index);
  }

  bool empty() const { return nodes_.size() == 1; }

  struct Match {
    size_t token_index;
    size_t length;
  };
  std::optional<Match> LongestAt(std::string_view text, size_t pos) const {
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

 private:
  struct Node {
    std::vector<std::pair<unsigned char, uint32_t>> children;  // few per node: linear scan
    int64_t token = -1;
  };

  std::optional<uint32_t> Child(uint32_t node, unsigned char byte) const {
    for (const auto& [b, child] : nodes_[node].children) {
      if (b == byte) return child;
    }
    return std::nullopt;
  }

  uint32_t ChildOrCreate(uint32_t node, unsigned char byte) {
    if (std::optional<uint32_t> child = Child(node, byte)) return *child;
    const auto created = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
    nodes_[node].children.emplace_back(byte, created);
    return created;
  }

  std::vector<Node> nodes_;
  std::array<bool, 256> first_bytes_{};  // lets the scan skip most positions at once
};

// A stretch of the input: either text still to tokenize, or one added token's id.
struct Segment {
  std::string_view text;
  std::optional<int32_t> added_id;
};

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

// Cuts the added tokens out of text following HF's AddedVocabulary::find_matches: scan
// for leftmost-longest matches, drop those that break single_word, widen the rest over
// whitespace for lstrip/rstrip. Empty gaps are not emitted.
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

// ---------------------------------------------------------------------------------------
// Pre-tokenizer

// One splitting pass over every current piece. HF's Split(Isolated) is {regex}; its
// ByteLevel pre-tokenizer is {add_prefix_space, GPT-2 regex if use_regex}.
struct PreTokenizerStep {
  std::shared_ptr<const Regex> regex;  // null: no splitting
  bool remove_matches = false;         // Split behavior "Removed": drop matches, keep gaps
  bool add_prefix_space = false;       // prepend ' ' to pieces that do not start with one
};

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

// ---------------------------------------------------------------------------------------
// BPE model
//
// The vocabulary and merge tables are flat (one arena, open-addressing slot arrays)
// rather than node-based maps: with 150K-280K entries, per-entry heap nodes made loading
// Qwen3's tokenizer.json several times slower.

// The bytes of every model token, by id, in one arena.
class TokenArena {
 public:
  bool Has(int32_t id) const {
    return id >= 0 && static_cast<size_t>(id) < spans_.size() && spans_[id].present;
  }
  std::string_view Get(int32_t id) const {
    if (!Has(id)) return {};
    return std::string_view(bytes_).substr(spans_[id].offset, spans_[id].length);
  }
  void Set(int32_t id, std::string_view bytes) {
    if (spans_.size() <= static_cast<size_t>(id)) spans_.resize(static_cast<size_t>(id) + 1);
    spans_[id] = {static_cast<uint32_t>(bytes_.size()), static_cast<uint32_t>(bytes.size()), true};
    bytes_.append(bytes);
  }
  void Reserve(size_t ids, size_t bytes) {
    spans_.reserve(ids);
    bytes_.reserve(bytes);
  }
  size_t id_count() const { return spans_.size(); }

 private:
  struct Span {
    uint32_t offset = 0;
    uint32_t length = 0;
    bool present = false;
  };
  std::string bytes_;
  std::vector<Span> spans_;
};

size_t SlotCountFor(size_t entries) {
  size_t slots = 16;
  while (slots < entries * 2) slots *= 2;  // load factor <= 1/2 keeps probes short
  return slots;
}

// Byte string -> id, for the tokens of a TokenArena: linear probing over slots holding
// the id and a hash (so most mismatches are rejected without touching the arena).
class TokenIndex {
 public:
  void Reserve(size_t entries) { slots_.assign(SlotCountFor(entries), Slot{}); }

  // Returns false when key is already present (the first id is kept).
  bool Insert(std::string_view key, int32_t id, const TokenArena& arena) {
    if ((count_ + 1) * 2 > slots_.size()) Grow(arena);
    const size_t hash = Hash(key);
    for (size_t i = hash & Mask();; i = (i + 1) & Mask()) {
      Slot& slot = slots_[i];
      if (slot.id < 0) {
        slot = {hash, id};
        ++count_;
        return true;
      }
      if (slot.hash == hash && arena.Get(slot.id) == key) return false;
    }
  }

  std::optional<int32_t> Find(std::string_view key, const TokenArena& arena) const {
    if (slots_.empty()) return std::nullopt;
    const size_t hash = Hash(key);
    for (size_t i = hash & Mask();; i = (i + 1) & Mask()) {
      const Slot& slot = slots_[i];
      if (slot.id < 0) return std::nullopt;
      if (slot.hash == hash && arena.Get(slot.id) == key) return slot.id;
    }
  }

 private:
  struct Slot {
    size_t hash = 0;
    int32_t id = -1;
  };
  static size_t Hash(std::string_view key) { return std::hash<std::string_view>{}(key); }
  size_t Mask() const { return slots_.size() - 1; }

  void Grow(const TokenArena& arena) {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(SlotCountFor(std::max<size_t>(count_ + 1, old.size())), Slot{});
    count_ = 0;
    for (const Slot& slot : old) {
      if (slot.id >= 0) Insert(arena.Get(slot.id), slot.id, arena);
    }
  }

  std::vector<Slot> slots_;
  size_t count_ = 0;
};

struct MergeTarget {
  int32_t rank = -1;
  int32_t id = -1;  // the token the pair merges into
};

// (left id, right id) -> merge, by open addressing on the packed pair.
class MergeTable {
 public:
  static uint64_t Key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) |
           static_cast<uint32_t>(right);
  }

  void Reserve(size_t entries) { slots_.assign(SlotCountFor(entries), Slot{}); }

  // Keeps the first (lowest-rank) merge of a pair, as HF does.
  void Insert(uint64_t key, MergeTarget target) {
    if ((count_ + 1) * 2 > slots_.size()) Grow();
    for (size_t i = Hash(key) & Mask();; i = (i + 1) & Mask()) {
      Slot& slot = slots_[i];
      if (slot.key == kEmpty) {
        slot = {key, target};
        ++count_;
        return;
      }
      if (slot.key == key) return;
    }
  }

  const MergeTarget* Find(uint64_t key) const {
    if (slots_.empty()) return nullptr;
    for (size_t i = Hash(key) & Mask();; i = (i + 1) & Mask()) {
      const Slot& slot = slots_[i];
      if (slot.key == key) return &slot.target;
      if (slot.key == kEmpty) return nullptr;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};  // ids are < 2^24, so no pair packs to this
  struct Slot {
    uint64_t key = kEmpty;
    MergeTarget target;
  };
  // Fibonacci hashing: the multiply spreads the packed ids over the high bits.
  static size_t Hash(uint64_t key) {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ull) >> 20);
  }
  size_t Mask() const { return slots_.size() - 1; }

  void Grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(SlotCountFor(std::max<size_t>(count_ + 1, old.size())), Slot{});
    count_ = 0;
    for (const Slot& slot : old) {
      if (slot.key != kEmpty) Insert(slot.key, slot.target);
    }
  }

  std::vector<Slot> slots_;
  size_t count_ = 0;
};

// A BPE vocabulary over raw bytes. Tokens whose byte-level spelling has a character
// outside the GPT-2 table cannot come out of byte-level merging; they only decode.
class BpeModel {
 public:
  TokenArena tokens;                   // by id: the bytes a model token decodes to
  TokenIndex index;                    // encodable tokens by their bytes
  StringMap<int32_t> unmappable_to_id;  // the others, by their spelling
  std::array<int32_t, 256> byte_ids{};  // single-byte tokens, -1 if missing
  MergeTable merges;
  bool ignore_merges = false;
  std::optional<int32_t> unk_id;

  // A token by its vocabulary spelling ("Ġhello").
  std::optional<int32_t> FindSpelling(std::string_view spelling) const {
    if (std::optional<std::string> bytes = ByteLevelToBytes(spelling)) {
      if (std::optional<int32_t> id = index.Find(*bytes, tokens)) return id;
    }
    auto it = unmappable_to_id.find(spelling);
    return it == unmappable_to_id.end() ? std::nullopt : std::optional<int32_t>(it->second);
  }

  // Appends the ids of one pre-token (raw bytes).
  void Tokenize(std::string_view word, std::vector<int32_t>& out) const {
    if (ignore_merges) {
      // Llama 3: a pre-token that is a whole vocabulary entry is taken as is, even
      // where merging by rank would have produced a different split.
      if (std::optional<int32_t> id = index.Find(word, tokens)) {
        out.push_back(*id);
        return;
      }
    }
    MergeWord(word, out);
  }

 private:
  struct Symbol {
    int32_t id;
    int32_t prev;
    int32_t next;
  };
  struct Candidate {
    int32_t rank;
    int32_t pos;  // index of the left symbol
    int32_t new_id;
    // Lowest rank first, leftmost first among equal ranks.
    friend bool operator>(const Candidate& a, const Candidate& b) {
      return std::tie(a.rank, a.pos) > std::tie(b.rank, b.pos);
    }
  };

  // Merges the byte symbols of word by rank: a min-heap of candidate pairs over a linked
  // list of symbols, stale candidates skipped when popped (as HF's Word::merge_all does).
  void MergeWord(std::string_view word, std::vector<int32_t>& out) const {
    std::vector<Symbol> symbols;
    symbols.reserve(word.size());
    for (char ch : word) {
      int32_t id = byte_ids[static_cast<unsigned char>(ch)];
      if (id < 0) {
        if (!unk_id) continue;  // HF drops bytes it cannot represent when there is no unk
        id = *unk_id;
      }
      const auto position = static_cast<int32_t>(symbols.size());
      symbols.push_back({id, position - 1, position + 1});
    }
    if (symbols.empty()) return;
    symbols.back().next = -1;

    std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
    auto consider = [&](int32_t left) {
      const int32_t right = symbols[left].next;
      if (right < 0) return;
      const MergeTarget* merge = merges.Find(MergeTable::Key(symbols[left].id, symbols[right].id));
      if (merge != nullptr) queue.push({merge->rank, left, merge->id});
    };
    for (int32_t i = 0; i + 1 < static_cast<int32_t>(symbols.size()); ++i) consider(i);

    while (!queue.empty()) {
      const Candidate top = queue.top();
      queue.pop();
      Symbol& left = symbols[top.pos];
      if (left.id < 0 || left.next < 0) continue;  // merged away, or now the last symbol
      Symbol& right = symbols[left.next];
      const MergeTarget* merge = merges.Find(MergeTable::Key(left.id, right.id));
      if (merge == nullptr || merge->id != top.new_id) continue;  // stale candidate

      left.id = top.new_id;
      right.id = -1;
      left.next = right.next;
      if (left.next >= 0) symbols[left.next].prev = top.pos;
      if (left.prev >= 0) consider(left.prev);
      consider(top.pos);
    }
    for (int32_t i = 0; i >= 0; i = symbols[i].next) out.push_back(symbols[i].id);
  }
};

// ---------------------------------------------------------------------------------------
// Reading tokenizer.json

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

}  // namespace

// ---------------------------------------------------------------------------------------
// Tokenizer::Impl

struct Tokenizer::Impl {
  bool nfc = false;
  std::vector<PreTokenizerStep> pre_tokenizer;
  BpeModel bpe;

  std::vector<AddedToken> added_tokens;
  StringMap<int32_t> added_by_content;
  AddedTokenTrie raw_trie;         // normalized=false tokens, matched before normalization
  AddedTokenTrie normalized_trie;  // normalized=true tokens, matched after it

  // By id: the index of its added token in added_tokens, or -1 for model tokens.
  std::vector<int32_t> added_index;

  // The single-sequence template: ids around the text when add_special_tokens is set.
  std::vector<int32_t> prefix_ids;
  std::vector<int32_t> suffix_ids;
  std::optional<int32_t> template_bos;  // the template's leading special token
  std::optional<int32_t> config_bos;    // tokenizer_config.json's bos_token

  mutable std::mutex cache_mutex;
  mutable StringMap<std::vector<int32_t>> word_cache;

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

  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens) const;
  void EncodePlain(std::string_view text, std::vector<int32_t>& ids) const;
  void EncodeWord(std::string_view word, std::vector<int32_t>& ids) const;
};

std::vector<int32_t> Tokenizer::Impl::Encode(std::string_view input,
                                             bool add_special_tokens) const {
  // Rust strings are always valid UTF-8; sanitizing first keeps the regex engine and the
  // normalizer on the same footing and makes garbage input harmless.
  const std::string text = SanitizeUtf8(input);
  std::vector<int32_t> ids;
  if (add_special_tokens) ids = prefix_ids;

  std::vector<Segment> raw_segments;
  SplitOnAddedTokens(text, raw_trie, added_tokens, raw_segments);
  for (const Segment& raw : raw_segments) {
    if (raw.added_id) {
      ids.push_back(*raw.added_id);
      continue;
    }
    const std::string normalized = nfc ? NormalizeNfc(raw.text) : std::string(raw.text);
    std::vector<Segment> segments;
    SplitOnAddedTokens(normalized, normalized_trie, added_tokens, segments);
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
// Loading tokenizer.json, one function per component.

absl::Status LoadNormalizer(const json& normalizer, Tokenizer::Impl& impl) {
  if (normalizer.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(normalizer);
  if (type == "NFC") {
    impl.nfc = true;
    return absl::OkStatus();
  }
  if (type == "Sequence") {
    auto it = normalizer.find("normalizers");
    if (it == normalizer.end() || !it->is_array()) {
      return Invalid("normalizer Sequence has no \"normalizers\" list");
    }
    for (const json& member : *it) {
      if (absl::Status status = LoadNormalizer(member, impl); !status.ok()) return status;
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

absl::Status LoadSplit(const json& split, Tokenizer::Impl& impl) {
  absl::StatusOr<std::string> pattern = SplitPattern(split);
  if (!pattern.ok()) return pattern.status();
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
  absl::StatusOr<std::shared_ptr<const Regex>> regex = Regex::Compile(*pattern);
  if (!regex.ok()) return regex.status();
  step.regex = *std::move(regex);
  impl.pre_tokenizer.push_back(std::move(step));
  return absl::OkStatus();
}

absl::Status LoadByteLevelPreTokenizer(const json& byte_level, Tokenizer::Impl& impl) {
  PreTokenizerStep step;
  step.add_prefix_space = BoolField(byte_level, "add_prefix_space", true);
  if (BoolField(byte_level, "use_regex", true)) {
    absl::StatusOr<std::shared_ptr<const Regex>> regex = Regex::Compile(kGpt2Pattern);
    if (!regex.ok()) return regex.status();
    step.regex = *std::move(regex);
  }
  // The byte-to-character mapping itself needs no step: we work on raw bytes throughout.
  if (step.regex != nullptr || step.add_prefix_space) impl.pre_tokenizer.push_back(step);
  return absl::OkStatus();
}

// Loads one pre-tokenizer (recursing into Sequence); sets saw_byte_level when it meets
// the ByteLevel step that byte-level BPE requires.
absl::Status LoadPreTokenizer(const json& pre_tokenizer, Tokenizer::Impl& impl,
                              bool& saw_byte_level) {
  const std::string type = TypeOf(pre_tokenizer);
  if (type == "Sequence") {
    auto it = pre_tokenizer.find("pretokenizers");
    if (it == pre_tokenizer.end() || !it->is_array()) {
      return Invalid("pre_tokenizer Sequence has no \"pretokenizers\" list");
    }
    for (const json& member : *it) {
      if (absl::Status status = LoadPreTokenizer(member, impl, saw_byte_level); !status.ok()) {
        return status;
      }
    }
    return absl::OkStatus();
  }
  if (type == "Split") return LoadSplit(pre_tokenizer, impl);
  if (type == "ByteLevel") {
    saw_byte_level = true;
    return LoadByteLevelPreTokenizer(pre_tokenizer, impl);
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
  if (absl::Status status = LoadVocab(*reader.vocab, bpe); !status.ok()) return status;
  if (absl::Status status = LoadMerges(*reader.merges, bpe); !status.ok()) return status;

  if (auto unk = model->find("unk_token"); unk != model->end() && unk->is_string()) {
    bpe.unk_id = bpe.FindSpelling(unk->get_ref<const std::string&>());
    if (!bpe.unk_id) {
      return Invalid(absl::StrCat("model.unk_token ", unk->dump(), " is not in model.vocab"));
    }
  }
  return absl::OkStatus();
}

absl::Status LoadAddedTokens(const json& root, Tokenizer::Impl& impl) {
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
    impl.added_by_content[token.content] = token.id;
    impl.added_tokens.push_back(std::move(token));
  }
  for (size_t i = 0; i < impl.added_tokens.size(); ++i) {
    const AddedToken& token = impl.added_tokens[i];
    if (token.normalized) {
      // Matched against normalized text, so the pattern is normalized the same way.
      impl.normalized_trie.Add(impl.nfc ? NormalizeNfc(token.content) : token.content, i);
    } else {
      impl.raw_trie.Add(token.content, i);
    }
  }
  return absl::OkStatus();
}

// TemplateProcessing's "single" template: special-token ids before and after "$A".
absl::Status LoadTemplate(const json& processor, Tokenizer::Impl& impl) {
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
  if (!prefix.empty()) impl.template_bos = prefix.front();
  impl.prefix_ids.insert(impl.prefix_ids.end(), prefix.begin(), prefix.end());
  impl.suffix_ids.insert(impl.suffix_ids.begin(), suffix.begin(), suffix.end());
  return absl::OkStatus();
}

absl::Status LoadPostProcessor(const json& processor, Tokenizer::Impl& impl) {
  if (processor.is_null()) return absl::OkStatus();
  const std::string type = TypeOf(processor);
  if (type == "ByteLevel") return absl::OkStatus();  // only adjusts offsets, not ids
  if (type == "TemplateProcessing") return LoadTemplate(processor, impl);
  if (type == "Sequence") {
    auto it = processor.find("processors");
    if (it == processor.end() || !it->is_array()) {
      return Invalid("post_processor Sequence has no \"processors\" list");
    }
    for (const json& member : *it) {
      if (absl::Status status = LoadPostProcessor(member, impl); !status.ok()) return status;
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
      if (absl::Status status = CheckDecoder(member); !status.ok()) return status;
    }
    return absl::OkStatus();
  }
  return Invalid(absl::StrCat("decoder type \"", type.empty() ? decoder.dump() : type,
                              "\" is not supported (only ByteLevel)"));
}

// Points each added token's id at it; ids past the model's vocabulary extend the table.
void IndexAddedTokens(Tokenizer::Impl& impl) {
  size_t size = impl.bpe.tokens.id_count();
  for (const AddedToken& token : impl.added_tokens) {
    size = std::max(size, static_cast<size_t>(token.id) + 1);
  }
  impl.added_index.assign(size, -1);
  for (size_t i = 0; i < impl.added_tokens.size(); ++i) {
    impl.added_index[impl.added_tokens[i].id] = static_cast<int32_t>(i);
  }
}

const json& FieldOrNull(const json& root, const char* key) {
  static const json kNull;
  auto it = root.find(key);
  return it == root.end() ? kNull : *it;
}

absl::StatusOr<std::unique_ptr<Tokenizer::Impl>> BuildImpl(const TokenizerJsonReader& reader) {
  const json& root = reader.root;
  if (!root.is_object()) return Invalid("the top level is not a JSON object");
  auto impl = std::make_unique<Tokenizer::Impl>();
  if (absl::Status s = LoadModel(root, reader, impl->bpe); !s.ok()) return s;
  if (absl::Status s = LoadNormalizer(FieldOrNull(root, "normalizer"), *impl); !s.ok()) return s;

  bool saw_byte_level = false;
  const json& pre_tokenizer = FieldOrNull(root, "pre_tokenizer");
  if (!pre_tokenizer.is_null()) {
    if (absl::Status s = LoadPreTokenizer(pre_tokenizer, *impl, saw_byte_level); !s.ok()) return s;
  }
  if (!saw_byte_level) {
    return Invalid("pre_tokenizer has no ByteLevel step; only byte-level BPE is supported");
  }
  if (absl::Status s = LoadAddedTokens(root, *impl); !s.ok()) return s;
  if (absl::Status s = LoadPostProcessor(FieldOrNull(root, "post_processor"), *impl); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckDecoder(FieldOrNull(root, "decoder")); !s.ok()) return s;
  IndexAddedTokens(*impl);
  return impl;
}

absl::StatusOr<std::unique_ptr<Tokenizer::Impl>> ParseTokenizerJson(std::string_view json_text) {
  try {
    TokenizerJsonReader reader;
    if (!json::sax_parse(json_text, &reader)) {
      return Invalid(reader.error.empty() ? "not valid JSON" : reader.error);
    }
    return BuildImpl(reader);
  } catch (const json::exception& e) {
    // The loaders check types before reading; this is a safety net for what they miss.
    return Invalid(e.what());
  }
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

// Where add_bos_token / add_eos_token ask for a token, checks that it exists.
absl::StatusOr<std::optional<int32_t>> RequiredConfigToken(const json& config, const char* flag,
                                                          const char* key,
                                                          const Tokenizer& tokenizer) {
  const std::optional<std::string> content = ConfigTokenContent(config, key);
  std::optional<int32_t> id = content ? tokenizer.TokenToId(*content) : std::nullopt;
  if (BoolField(config, flag, false) && !id) {
    return absl::InvalidArgumentError(
        content ? absl::StrCat(flag, " is true but ", key, " \"", *content,
                               "\" is not a token of tokenizer.json")
                : absl::StrCat(flag, " is true but there is no ", key));
  }
  return id;
}

// Applies tokenizer_config.json's add_bos_token / add_eos_token where the template does
// not already insert those tokens (transformers' behaviour for Llama-style configs).
absl::Status ApplyTokenizerConfig(const json& config, const Tokenizer& tokenizer,
                                  Tokenizer::Impl& impl) {
  if (!config.is_object()) return absl::InvalidArgumentError("not a JSON object");
  absl::StatusOr<std::optional<int32_t>> bos =
      RequiredConfigToken(config, "add_bos_token", "bos_token", tokenizer);
  if (!bos.ok()) return bos.status();
  absl::StatusOr<std::optional<int32_t>> eos =
      RequiredConfigToken(config, "add_eos_token", "eos_token", tokenizer);
  if (!eos.ok()) return eos.status();

  impl.config_bos = *bos;
  if (BoolField(config, "add_bos_token", false) &&
      (impl.prefix_ids.empty() || impl.prefix_ids.front() != **bos)) {
    impl.prefix_ids.insert(impl.prefix_ids.begin(), **bos);
  }
  if (BoolField(config, "add_eos_token", false) &&
      (impl.suffix_ids.empty() || impl.suffix_ids.back() != **eos)) {
    impl.suffix_ids.push_back(**eos);
  }
  return absl::OkStatus();
}

}  // namespace

// ---------------------------------------------------------------------------------------
// Tokenizer

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(std::string_view json_text) {
  absl::StatusOr<std::unique_ptr<Impl>> impl = ParseTokenizerJson(json_text);
  if (!impl.ok()) return WithContext(impl.status(), "tokenizer.json");
  return std::unique_ptr<Tokenizer>(new Tokenizer(*std::move(impl)));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromFile(const std::filesystem::path& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<std::unique_ptr<Impl>> impl = ParseTokenizerJson(*text);
  if (!impl.ok()) return WithContext(impl.status(), path.string());
  return std::unique_ptr<Tokenizer>(new Tokenizer(*std::move(impl)));
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromDirectory(
    const std::filesystem::path& model_dir) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = FromFile(model_dir / "tokenizer.json");
  if (!tokenizer.ok()) return tokenizer.status();

  const std::filesystem::path config_path = model_dir / "tokenizer_config.json";
  std::error_code error;
  if (!std::filesystem::exists(config_path, error)) return tokenizer;
  absl::StatusOr<std::string> text = ReadFileToString(config_path);
  if (!text.ok()) return text.status();
  const json config = json::parse(*text, /*cb=*/nullptr, /*allow_exceptions=*/false);
  if (config.is_discarded()) {
    return absl::InvalidArgumentError(absl::StrCat(config_path.string(), ": not valid JSON"));
  }
  absl::Status status = ApplyTokenizerConfig(config, **tokenizer, *(*tokenizer)->impl_);
  if (!status.ok()) return WithContext(status, config_path.string());
  return tokenizer;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special_tokens) const {
  return impl_->Encode(text, add_special_tokens);
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
