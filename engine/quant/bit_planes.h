// The nested bit-plane layout: GRINQH's storage of 8-bit weight codes, arranged so that
// reading level b of input channel k is one contiguous run of exactly b bit planes.
//
// Decode grades every input channel k to its own level b_k (0..8) each step, and its
// speed is the bytes it reads, so the layout must let it read only those bits (docs/METHOD.md
// §2, point 4). Output rows are cut into tiles of `tile_rows` rows (zero-code padding at
// the end); for tile t, channel k and plane j (j = 0 the most significant bit) the store
// holds tile_rows/8 bytes whose bit i (LSB first) is bit (7 − j) of the code of row
// t·tile_rows + i. Byte order: [tile][channel][plane][tile_rows/8], so level b of channel
// k in tile t is the b·tile_rows/8 bytes starting at ((t·cols + k)·stored_planes)·tile_rows/8.
// A store may keep only the top `stored_planes` < 8 planes (a shallower, smaller hierarchy).
// A fixed-width baseline (RTN, GPTQ, AWQ at N bits) is a store of N-bit codes (code_bits
// = N), all N planes kept; the layout is the same with 8 replaced by code_bits.
//
// Per (row, group), [rows × groups] row-major as in quant::QuantizedMatrix: an fp16 scale
// and an integer zero point, one byte in code units (every quantizer here rounds its zero
// to a code, so a byte holds it exactly and a decode step reads 3 bytes per group, not 4).
// A weight read at level b is
//   w = scale · (TruncatedCode(code, code_bits, b) − zero).
// docs/FORMAT.md is the full description, with a worked example.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "engine/base/half.h"
#include "engine/quant/quant.h"

namespace grinqh {

// Output rows per tile, as the .grinqh format stores them: a plane of a 256-row tile is 32
// bytes, one GPU memory sector, so reading level b of a channel touches b sectors and no more.
inline constexpr int kGrinqhTileRows = 256;
// The tile height of a matrix of `rows` output rows: kGrinqhTileRows, or for a smaller
// matrix one tile of its own height (rounded up to a multiple of 8), so no padding rows
// are stored or read.
constexpr int GrinqhTileRows(int rows) { return rows >= kGrinqhTileRows ? kGrinqhTileRows : (rows + 7) / 8 * 8; }
inline constexpr int kCodeBits = 8;  // GRINQH's codes are 8 bits; levels are their prefixes
inline constexpr size_t kGroupParamBytes = 3;  // per (row, group): an fp16 scale and a one-byte zero

// The dimensions of a bit-plane store, shared by the owning matrix and the view.
struct BitPlaneShape {
  int rows = 0;                      // output rows (unpadded)
  int cols = 0;                      // input channels
  int tile_rows = kGrinqhTileRows;   // a positive multiple of 8
  int stored_planes = kCodeBits;     // 1..code_bits: the deepest level this store can serve
  int group_size = 128;              // input channels per (row, group) scale and zero
  int code_bits = kCodeBits;         // 1..8: the width of the codes whose top planes are kept

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
  // multiple of 8, 1 ≤ stored_planes ≤ code_bits ≤ 8); INVALID_ARGUMENT naming the field
  // otherwise.
  absl::Status Validate() const;
};

// A read-only, non-owning view of a store: in a BitPlaneMatrix or in a mapped .grinqh file.
struct BitPlaneView {
  BitPlaneShape shape;
  const uint8_t* planes = nullptr;   // shape.planes_size() bytes
  const uint16_t* scales = nullptr;  // fp16 bits, shape.params_size() entries
  const uint8_t* zeros = nullptr;    // integer codes, shape.params_size() entries

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
                                              std::span<const uint8_t> zeros);

// A store that owns its bytes (what the quantizer produces and the writer saves).
struct BitPlaneMatrix {
  BitPlaneShape shape;
  std::vector<uint8_t> planes;
  std::vector<uint16_t> scales;
  std::vector<uint8_t> zeros;

  BitPlaneView view() const { return {shape, planes.data(), scales.data(), zeros.data()}; }
};

// Packs q.bits-bit codes (1..8: GRINQH's 8, a baseline's N) into planes, keeping the top
// `max_bits` (1..q.bits; 0 keeps them all). Scales must be fp16-representable and zeros
// integer codes, as quant.h promises: a value that would change is refused, not rounded.
absl::StatusOr<BitPlaneMatrix> PackBitPlanes(const quant::QuantizedMatrix& q,
                                             int tile_rows = kGrinqhTileRows,
                                             int max_bits = 0);

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
