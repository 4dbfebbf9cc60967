#include "engine/backends/kv_blocks.h"

#include <algorithm>

namespace grinqh {

KvBlockPool::KvBlockPool(int64_t capacity_tokens, int block_tokens)
    : block_tokens_(std::max(1, block_tokens)),
      num_blocks_(static_cast<int>(std::max<int64_t>(1, (capacity_tokens + block_tokens_ - 1) / block_tokens_))) {
  free_.reserve(static_cast<size_t>(num_blocks_));
  for (int b = num_blocks_ - 1; b >= 0; --b) free_.push_back(b);  // block 0 handed out first
}

int64_t KvBlockPool::free_tokens() const {
  std::lock_guard lock(mutex_);
  return static_cast<int64_t>(free_.size()) * block_tokens_;
}

bool KvBlockPool::Take(std::vector<int>& blocks, int count) {
  std::lock_guard lock(mutex_);
  if (count <= 0) return true;
  if (static_cast<size_t>(count) > free_.size()) return false;
  for (int i = 0; i < count; ++i) {
    blocks.push_back(free_.back());
    free_.pop_back();
  }
  return true;
}

void KvBlockPool::Return(std::vector<int>& blocks, int keep) {
  std::lock_guard lock(mutex_);
  while (static_cast<int>(blocks.size()) > std::max(0, keep)) {
    free_.push_back(blocks.back());
    blocks.pop_back();
  }
}

}  // namespace grinqh
