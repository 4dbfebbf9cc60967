#include "engine/tokenizer/bpe.h"

#include <algorithm>
#include <queue>
#include <tuple>
#include <utility>

#include "engine/base/unicode.h"

namespace grinqh::tokenizer_internal {
namespace {

size_t SlotCountFor(size_t entries) {
  size_t slots = 16;
  while (slots < entries * 2) slots *= 2;  // load factor <= 1/2 keeps probes short
  return slots;
}

}  // namespace

// ---------------------------------------------------------------------------------------
// TokenArena, TokenIndex, MergeTable

void TokenArena::Set(int32_t id, std::string_view bytes) {
  if (spans_.size() <= static_cast<size_t>(id)) spans_.resize(static_cast<size_t>(id) + 1);
  spans_[id] = {static_cast<uint32_t>(bytes_.size()), static_cast<uint32_t>(bytes.size()), true};
  bytes_.append(bytes);
}

void TokenArena::Reserve(size_t ids, size_t bytes) {
  spans_.reserve(ids);
  bytes_.reserve(bytes);
}

void TokenIndex::Reserve(size_t entries) { slots_.assign(SlotCountFor(entries), Slot{}); }

bool TokenIndex::Insert(std::string_view key, int32_t id, const TokenArena& arena) {
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

void TokenIndex::Grow(const TokenArena& arena) {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(SlotCountFor(std::max<size_t>(count_ + 1, old.size())), Slot{});
  count_ = 0;
  for (const Slot& slot : old) {
    if (slot.id >= 0) Insert(arena.Get(slot.id), slot.id, arena);
  }
}

void MergeTable::Reserve(size_t entries) { slots_.assign(SlotCountFor(entries), Slot{}); }

void MergeTable::Insert(uint64_t key, MergeTarget target) {
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

void MergeTable::Grow() {
  std::vector<Slot> old = std::move(slots_);
  slots_.assign(SlotCountFor(std::max<size_t>(count_ + 1, old.size())), Slot{});
  count_ = 0;
  for (const Slot& slot : old) {
    if (slot.key != kEmpty) Insert(slot.key, slot.target);
  }
}

// ---------------------------------------------------------------------------------------
// BpeModel

std::optional<int32_t> BpeModel::FindSpelling(std::string_view spelling) const {
  if (std::optional<std::string> bytes = ByteLevelToBytes(spelling)) {
    if (std::optional<int32_t> id = index.Find(*bytes, tokens)) return id;
  }
  auto it = unmappable_to_id.find(spelling);
  return it == unmappable_to_id.end() ? std::nullopt : std::optional<int32_t>(it->second);
}

void BpeModel::Tokenize(std::string_view word, std::vector<int32_t>& out) const {
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

namespace {

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

}  // namespace

// Merges the byte symbols of word by rank: a min-heap of candidate pairs over a linked
// list of symbols, stale candidates skipped when popped (as HF's Word::merge_all does).
void BpeModel::MergeWord(std::string_view word, std::vector<int32_t>& out) const {
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

}  // namespace grinqh::tokenizer_internal
