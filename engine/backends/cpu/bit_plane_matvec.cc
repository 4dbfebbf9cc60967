#include "engine/backends/cpu/bit_plane_matvec.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace grinqh::cpu {
namespace {

// acc[r] += v for every row r (< tile_rows) whose bit is set in the plane.
inline void AddWhereSet(float* acc, const uint8_t* plane, int tile_rows, float v) {
#if defined(__AVX512F__)
  const __m512 value = _mm512_set1_ps(v);
  for (int r = 0; r < tile_rows; r += 16) {
    uint16_t mask;
    std::memcpy(&mask, plane + r / 8, sizeof(mask));
    const __m512 a = _mm512_loadu_ps(acc + r);
    _mm512_storeu_ps(acc + r, _mm512_mask_add_ps(a, mask, a, value));
  }
#else
  for (int r = 0; r < tile_rows; ++r) acc[r] += ((plane[r / 8] >> (r % 8)) & 1) ? v : 0.f;
#endif
}

// The centre offset of a level of n-bit codes: T_b(q) = top_b(q) + (2^(n−b) − 1) / 2.
inline float Centre(int code_bits, int level) { return 0.5f * static_cast<float>((1 << (code_bits - level)) - 1); }

// Σ_k x_k 2^(7−j) · plane_j over a tile's rows, for any tile height.
class TileAccumulator {
 public:
  explicit TileAccumulator(int tile_rows) : tile_rows_(tile_rows), acc_(static_cast<size_t>(tile_rows)) {}
  void Reset() { std::fill(acc_.begin(), acc_.end(), 0.f); }
  void AddPlane(const uint8_t* plane, float weight) { AddWhereSet(acc_.data(), plane, tile_rows_, weight); }
  const float* Rows() { return acc_.data(); }

 private:
  int tile_rows_;
  std::vector<float> acc_;
};

#if defined(__AVX512F__)
// The common shape (tiles of 256 rows): the 256 sums stay in sixteen registers across a
// whole group, so each plane costs sixteen masked adds and nothing else.
class Tile256Accumulator {
 public:
  void Reset() {
    for (auto& a : acc_) a = _mm512_setzero_ps();
  }
  void AddPlane(const uint8_t* plane, float weight) {
    const __m512 value = _mm512_set1_ps(weight);
    uint16_t masks[kVectors];
    std::memcpy(masks, plane, sizeof(masks));
    for (int i = 0; i < kVectors; ++i) acc_[i] = _mm512_mask_add_ps(acc_[i], masks[i], acc_[i], value);
  }
  const float* Rows() {
    for (int i = 0; i < kVectors; ++i) _mm512_store_ps(rows_ + 16 * i, acc_[i]);
    return rows_;
  }

 private:
  static constexpr int kVectors = 16;  // 256 rows / 16 lanes
  __m512 acc_[kVectors];
  alignas(64) float rows_[256];
};
#endif

// Rows of one tile, group by group: accumulate the read planes, then fold in each row's
// scale and zero with the group's Σ x_k c_b and Σ x_k.
template <typename Accumulator>
void Tile(const BitPlaneView& w, int tile, const float* x, const uint8_t* levels, float* y, Accumulator& acc) {
  const BitPlaneShape& s = w.shape;
  const size_t plane_bytes = s.plane_bytes();
  const int r0 = tile * s.tile_rows;
  const int rows = std::min(s.tile_rows, s.rows - r0);
  std::fill(y + r0, y + r0 + rows, 0.f);
  for (int g = 0; g < s.groups(); ++g) {
    const int k0 = g * s.group_size, k1 = std::min(s.cols, k0 + s.group_size);
    acc.Reset();
    float centre_sum = 0.f, x_sum = 0.f;  // over the group's read channels
    bool read_any = false;
    for (int k = k0; k < k1; ++k) {
      const int level = levels[k];
      if (level == 0) continue;
      read_any = true;
      x_sum += x[k];
      centre_sum += x[k] * Centre(s.code_bits, level);
      const uint8_t* planes = w.planes + s.ChannelOffset(tile, k);
      float weight = x[k] * static_cast<float>(1 << (s.code_bits - 1));  // x_k · 2^(n−1) for the top plane
      for (int j = 0; j < level; ++j, weight *= 0.5f) acc.AddPlane(planes + static_cast<size_t>(j) * plane_bytes, weight);
    }
    if (!read_any) continue;  // a group of skipped channels needs no scales either
    const float* sums = acc.Rows();
    for (int r = 0; r < rows; ++r) {
      const size_t p = static_cast<size_t>(r0 + r) * static_cast<size_t>(s.groups()) + static_cast<size_t>(g);
      y[r0 + r] += HalfToFloat(w.scales[p]) * (sums[r] + centre_sum - static_cast<float>(w.zeros[p]) * x_sum);
    }
  }
}

void Tile(const BitPlaneView& w, int tile, const float* x, const uint8_t* levels, float* y) {
#if defined(__AVX512F__)
  if (w.shape.tile_rows == 256) {
    Tile256Accumulator acc;
    return Tile(w, tile, x, levels, y, acc);
  }
#endif
  TileAccumulator acc(w.shape.tile_rows);
  Tile(w, tile, x, levels, y, acc);
}

}  // namespace

ReadBytes CountReadBytes(const BitPlaneShape& shape, const uint8_t* levels) {
  size_t planes_per_tile = 0, groups_read = 0;
  for (int g = 0; g < shape.groups(); ++g) {
    bool any = false;
    for (int k = g * shape.group_size; k < std::min(shape.cols, (g + 1) * shape.group_size); ++k) {
      planes_per_tile += static_cast<size_t>(levels[k]) * shape.plane_bytes();
      any = any || levels[k] > 0;
    }
    groups_read += any ? 1 : 0;
  }
  return {planes_per_tile * static_cast<size_t>(shape.tiles()),
          groups_read * static_cast<size_t>(shape.rows) * kGroupParamBytes};
}

void BitPlaneMatVec(ThreadPool& pool, const BitPlaneView& w, const float* x, const uint8_t* levels, float* y) {
  pool.ParallelFor(w.shape.tiles(), [&](int64_t begin, int64_t end) {
    for (int64_t t = begin; t < end; ++t) Tile(w, static_cast<int>(t), x, levels, y);
  });
}

void BitPlaneMatVec(const BitPlaneView& w, const float* x, const uint8_t* levels, float* y) {
  for (int t = 0; t < w.shape.tiles(); ++t) Tile(w, t, x, levels, y);
}

}  // namespace grinqh::cpu
