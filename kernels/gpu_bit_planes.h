// The bit-plane layout the GPU keeps: the one definition, shared by the re-lay at load, the
// kernels, the tests and the benchmark. Plain C++ (no CUDA headers). docs/FORMAT.md §4
// ("On the GPU") describes it beside the file's layout.
//
// The file's store (engine/quant/bit_planes.h) cuts output rows into tiles of tile_rows
// (64 or 256) and keeps, per [tile][channel][plane], tile_rows/8 bytes, bit i (LSB first)
// of byte b being the plane's bit of row 8b + i. The GPU keeps the same bits re-cut:
//
//  * tiles of kGpuTileRows = 512 rows, so one plane of one channel is a 64-byte run: HBM
//    fetches 64 bytes at a time, and a 32-byte run (256-row tiles) wastes half a fetch
//    whenever a channel's level is odd;
//  * the last tile has its own height, rounded up to 128 rows (16 bytes per plane, the
//    kernels' copy unit), so a matrix whose rows are not a multiple of 512 reads at most
//    127 padding rows instead of a padded tile;
//  * planes [tile][channel][plane][TilePlaneBytes(tile)]: level b of channel k in tile t is
//    the b · TilePlaneBytes(t) contiguous bytes at ChannelOffset(t, k);
//  * scales (fp16 bits) and zeros (one-byte codes) as [group][row], so the rows of one tile
//    read a group's parameters as one contiguous run (the file keeps [row][group]).
//
// A weight read at level b is scale · (TruncatedCode(code, code_bits, b) − zero), exactly
// as in the file. Baselines' N-bit stores keep code_bits = planes = N.
#pragma once

#include <cstddef>
#include <cstdint>

// The shape's arithmetic is shared by host and device code; compiled by nvcc it is both.
#if defined(__CUDACC__)
#define GRINQH_HOST_DEVICE __host__ __device__
#else
#define GRINQH_HOST_DEVICE
#endif

namespace grinqh::cuda {

inline constexpr int kGpuTileRows = 512;
inline constexpr int kGpuPlaneBytes = kGpuTileRows / 8;  // 64: one full tile's plane run

struct GpuPlaneShape {
  int rows = 0;        // output rows
  int cols = 0;        // input channels
  int planes = 8;      // planes kept per channel (the deepest level served), ≤ code_bits
  int code_bits = 8;   // width of the codes whose top planes are kept
  int group_size = 128;

  GRINQH_HOST_DEVICE int tiles() const { return (rows + kGpuTileRows - 1) / kGpuTileRows; }
  GRINQH_HOST_DEVICE int groups() const { return (cols + group_size - 1) / group_size; }
  GRINQH_HOST_DEVICE int TileRows(int tile) const {
    const int left = rows - tile * kGpuTileRows;
    return left < kGpuTileRows ? left : kGpuTileRows;
  }
  // Bytes of one plane of one channel in `tile`: 64, or the last tile's rows rounded up to
  // 128, / 8 (a multiple of 16 bytes, so every run is 16-byte aligned).
  GRINQH_HOST_DEVICE int TilePlaneBytes(int tile) const { return (TileRows(tile) + 127) / 128 * 16; }
  // Every tile before `tile` is full.
  GRINQH_HOST_DEVICE size_t TileOffset(int tile) const {
    return static_cast<size_t>(tile) * static_cast<size_t>(cols) * static_cast<size_t>(planes) * kGpuPlaneBytes;
  }
  GRINQH_HOST_DEVICE size_t ChannelOffset(int tile, int col) const {
    return TileOffset(tile) +
           static_cast<size_t>(col) * static_cast<size_t>(planes) * static_cast<size_t>(TilePlaneBytes(tile));
  }
  GRINQH_HOST_DEVICE size_t planes_size() const { return rows == 0 ? 0 : ChannelOffset(tiles() - 1, cols); }
  GRINQH_HOST_DEVICE size_t params_size() const { return static_cast<size_t>(groups()) * static_cast<size_t>(rows); }
  GRINQH_HOST_DEVICE size_t ParamIndex(int group, int row) const {
    return static_cast<size_t>(group) * static_cast<size_t>(rows) + static_cast<size_t>(row);
  }
};

// A matrix in the GPU layout. Pointers are device pointers for the kernels, host pointers
// for the re-lay below.
struct GpuPlaneMatrix {
  GpuPlaneShape shape;
  const uint8_t* planes = nullptr;   // shape.planes_size() bytes
  const uint16_t* scales = nullptr;  // fp16 bits, [group][row]
  const uint8_t* zeros = nullptr;    // codes, [group][row]
};

// The file's store, by its fields (engine/quant/bit_planes.h's BitPlaneShape and view),
// so kernels/ needs nothing of engine/.
struct FilePlaneStore {
  int rows = 0, cols = 0, tile_rows = 64, stored_planes = 8, group_size = 128, code_bits = 8;
  const uint8_t* planes = nullptr;   // [tile][channel][plane][tile_rows/8]
  const uint16_t* scales = nullptr;  // [row][group]
  const uint8_t* zeros = nullptr;    // [row][group]
};

// The GPU shape of a file store (same rows, cols, planes, code width and group size).
GpuPlaneShape GpuShapeOf(const FilePlaneStore& file);

// Re-lays a file store into host buffers of the GPU layout (planes_size(), params_size()
// and params_size() entries), once at load; the caller uploads them. Bits of padding rows
// in the last tile are zero. Host code: a byte gather, no arithmetic on the values.
void RelayToGpuLayout(const FilePlaneStore& file, uint8_t* planes, uint16_t* scales, uint8_t* zeros);

}  // namespace grinqh::cuda
