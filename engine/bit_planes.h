// The nested bit-plane layout: GRINQH's storage of 8-bit weight codes, arranged so that
// reading level b of input channel k is one contiguous run of exactly b bit planes.
//
// Decode grades every input channel k to its own level b_k (0..8) each step, and its
// speed is the bytes it reads, so the layout must let it read only those bits (DESIGN.md
// §2, point 4). Output rows are cut into tiles of `tile_rows` rows (zero-code padding at
// the end); for tile t, channel k and plane j (j = 0 the most significant bit) the store
// holds tile_rows/8 bytes whose bit i (LSB first) is bit (7 − j) of the code of row
// t·tile_rows + i. Byte order: [tile][channel][plane][tile_rows/8], so level b of channel
// k in tile t is the b·tile_rows/8 bytes starting at ((t·cols + k)·stored_planes)·tile_rows/8.
// A store may keep only the top `stored_planes` < 8 planes (a shallower, smaller hierarchy).
//
// Scales and zeros are fp16 bit patterns, [rows × groups] row-major, as in
// quant::QuantizedMatrix; a weight read at level b is
//   w = scale · (TruncatedCode(code, 8, b) − zero).
// docs/FORMAT.md is the full description, with a worked example.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/half.h"
#include "engine/quant.h"

namespace grinqh {

inline constexpr int kDefaultTileRows = 64;
inline constexpr int kCodeBits = 8;  // every stored code is 8 bits; levels are its prefixes

// The dimensions of a bit-plane store, shared by the owning matrix and the view.
struct BitPlaneShape {
  int rows = 0;                      // output rows (unpadded)
  int cols = 0;                      // input channels
  int tile_rows = kDefaultTileRows;  // a positive multiple of 8
  int stored_planes = kCodeBits;     // 1..8: the deepest level this store can serve
  int group_size = 128;              // input channels per (row, group) scale and zero

  // In 64 bits: a shape read from a file may hold values near INT_MAX.
  int tiles() const { return static_cast<int>((int64_t{rows} + tile_rows - 1) / tile_rows); }
  int groups() const { return static_cast<int>((int64_t{cols} + group_size - 1) / group_size); }
  size_t plane_bytes() const { return static_cast<size_t>(tile_rows / 8); }
  size_t planes_size() const {  // bytes of the whole plane store
    return static_cast<size_t>(tiles()) * static_cast<size_t>(cols) *
           static_cast<size_t>(stored_planes) * plane_bytes();
  }
  size_t params_size() const {  // entries of scales (and of zeros)
    return static_cast<size_t>(rows) * static_cast<size_t>(groups());
  }
  // Byte offset of channel `col`'s most significant plane in tile `tile`: level b of the
  // channel is the b·plane_bytes() bytes from here.
  size_t ChannelOffset(int tile, int col) const {
    return (static_cast<size_t>(tile) * static_cast<size_t>(cols) + static_cast<size_t>(col)) *
           static_cast<size_t>(stored_planes) * plane_bytes();
  }
  // OK when the fields describe a store this code can read (positive sizes, tile a
  // multiple of 8, 1 ≤ stored_planes ≤ 8); INVALID_ARGUMENT naming the field otherwise.
  absl::Status Validate() const;
};

// A read-only, non-owning view of a store: in a BitPlaneMatrix or in a mapped .grinqh file.
struct BitPlaneView {
  BitPlaneShape shape;
  const uint8_t* planes = nullptr;   // shape.planes_size() bytes
  const uint16_t* scales = nullptr;  // fp16 bits, shape.params_size() entries
  const uint16_t* zeros = nullptr;   // fp16 bits, in code units, shape.params_size() entries

  // The bytes of level `level` of channel `col` in tile `tile`: the only bytes a reader
  // at that level touches for that (tile, channel). Empty for level 0. Requires
  // 0 ≤ level ≤ stored_planes.
  std::span<const uint8_t> ChannelLevel(int tile, int col, int level) const {
    return {planes + shape.ChannelOffset(tile, col),
            static_cast<size_t>(level) * shape.plane_bytes()};
  }
};

// Checks the shape and that each span holds exactly what the shape needs, then views them.
absl::StatusOr<BitPlaneView> MakeBitPlaneView(const BitPlaneShape& shape,
                                              std::span<const uint8_t> planes,
                                              std::span<const uint16_t> scales,
                                              std::span<const uint16_t> zeros);

// A store that owns its bytes (what the quantizer produces and the writer saves).
struct BitPlaneMatrix {
  BitPlaneShape shape;
  std::vector<uint8_t> planes;
  std::vector<uint16_t> scales;
  std::vector<uint16_t> zeros;

  BitPlaneView view() const { return {shape, planes.data(), scales.data(), zeros.data()}; }
};

// Packs 8-bit codes (q.bits must be 8) into planes, keeping the top `max_bits` (1..8).
// Scales and zeros must be fp16-representable, as quant.h promises: a value that would
// round is refused rather than silently changed.
absl::StatusOr<BitPlaneMatrix> PackBitPlanes(const quant::QuantizedMatrix& q,
                                             int tile_rows = kDefaultTileRows,
                                             int max_bits = kCodeBits);

// A fixed-width baseline's codes (q.bits = N ≤ 8: RTN, GPTQ, AWQ) as a store of depth N
// whose full depth reads exactly scale · (q − zero): the 8-bit code is q << (8 − N), and
// since level N reads it at the centre of its interval (+ (2^(8−N) − 1)/2), the stored
// scale is scale / 2^(8−N) and the stored zero zero · 2^(8−N) + (2^(8−N) − 1)/2, both
// exact in fp16 unless the scale falls below fp16's normal range (refused, as PackBitPlanes
// refuses any inexact value).
absl::StatusOr<BitPlaneMatrix> PackFixedWidthCodes(const quant::QuantizedMatrix& q,
                                                   int tile_rows = kDefaultTileRows);

// The codes at `level` (0..stored_planes), [rows × cols] row-major: the top `level` bits
// of each code in place, the dropped low bits zero (level 0: all zero).
absl::StatusOr<std::vector<uint8_t>> UnpackCodes(const BitPlaneView& view, int level);

// The weights, [rows × cols] fp32, with input channel k read at levels[k] (0..stored_planes;
// 0 leaves the column zero without reading it). Equal, column by column, to
// quant::QuantizedMatrix::DequantizeLevel at that column's level.
absl::StatusOr<std::vector<float>> DequantizeLevels(const BitPlaneView& view,
                                                    std::span<const int> levels);
// Every channel at the same level.
absl::StatusOr<std::vector<float>> DequantizeLevel(const BitPlaneView& view, int level);


}  // namespace grinqh
