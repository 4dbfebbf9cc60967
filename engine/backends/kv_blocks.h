// The KV pool's bookkeeping, shared by backends: fixed-size blocks of cache positions,
// handed out by id (as vLLM's block tables are). The storage behind a block id is the
// backend's (host memory for the CPU, device memory for a GPU); this only counts.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

namespace grinqh {

inline constexpr int kKvBlockTokens = 16;                // positions per block
inline constexpr int64_t kDefaultKvCacheTokens = 65536;  // a pool's size when none is asked for

class KvBlockPool {
 public:
  // At least `capacity_tokens` positions (rounded up to whole blocks; at least one block).
  KvBlockPool(int64_t capacity_tokens, int block_tokens);

  int block_tokens() const { return block_tokens_; }
  int num_blocks() const { return num_blocks_; }
  int64_t capacity_tokens() const { return int64_t{num_blocks_} * block_tokens_; }
  int64_t free_tokens() const;
  // Blocks that `length` positions occupy.
  int BlocksFor(int64_t length) const { return static_cast<int>((length + block_tokens_ - 1) / block_tokens_); }

  // Takes `count` blocks onto the end of `blocks`; false, taking none, when fewer are free.
  bool Take(std::vector<int>& blocks, int count);
  // Returns the blocks of `blocks` past the first `keep`.
  void Return(std::vector<int>& blocks, int keep);

 private:
  const int block_tokens_;
  const int num_blocks_;
  mutable std::mutex mutex_;  // caches are freed on whatever thread drops them
  std::vector<int> free_;     // guarded by mutex_
};

}  // namespace grinqh
