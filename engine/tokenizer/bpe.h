// The BPE model over raw bytes: its vocabulary and merge tables, and merging a pre-token.
//
// The vocabulary and merge tables are flat (one arena, open-addressing slot arrays)
// rather than node-based maps: with 150K-280K entries, per-entry heap nodes made loading
// Qwen3's tokenizer.json several times slower.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/base/string_map.h"

namespace grinqh::tokenizer_internal {

// Ids beyond this are refused so a corrupt file cannot make us allocate gigabytes.
inline constexpr int64_t kMaxTokenId = (int64_t{1} << 24) - 1;

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
  void Set(int32_t id, std::string_view bytes);
  void Reserve(size_t ids, size_t bytes);
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

// Byte string -> id, for the tokens of a TokenArena: linear probing over slots holding
// the id and a hash (so most mismatches are rejected without touching the arena).
class TokenIndex {
 public:
  void Reserve(size_t entries);

  // Returns false when key is already present (the first id is kept).
  bool Insert(std::string_view key, int32_t id, const TokenArena& arena);

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
  void Grow(const TokenArena& arena);

  std::vector<Slot> slots_;
  size_t count_ = 0;
};

// What a pair of tokens merges into, and the merge's rank (lower merges first).
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

  void Reserve(size_t entries);

  // Keeps the first (lowest-rank) merge of a pair, as HF does.
  void Insert(uint64_t key, MergeTarget target);

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
  void Grow();

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
  std::optional<int32_t> FindSpelling(std::string_view spelling) const;

  // Appends the ids of one pre-token (raw bytes).
  void Tokenize(std::string_view word, std::vector<int32_t>& out) const;

 private:
  void MergeWord(std::string_view word, std::vector<int32_t>& out) const;
};

}  // namespace grinqh::tokenizer_internal
