#include "kernels/gpu_bit_planes.h"

#include <cstring>

namespace grinqh::cuda {

GpuPlaneShape GpuShapeOf(const FilePlaneStore& file) {
  return {file.rows, file.cols, file.stored_planes, file.code_bits, file.group_size};
}

void RelayToGpuLayout(const FilePlaneStore& file, uint8_t* planes, uint16_t* scales, uint8_t* zeros) {
  const GpuPlaneShape gpu = GpuShapeOf(file);
  std::memset(planes, 0, gpu.planes_size());
  const size_t file_plane_bytes = static_cast<size_t>(file.tile_rows / 8);
  // Both tile heights are multiples of 8, so every GPU byte (8 rows) is one file byte.
  for (int t = 0; t < gpu.tiles(); ++t) {
    const int row0 = t * kGpuTileRows, bytes_used = (gpu.TileRows(t) + 7) / 8;
    for (int k = 0; k < gpu.cols; ++k) {
      for (int j = 0; j < gpu.planes; ++j) {
        uint8_t* out = planes + gpu.ChannelOffset(t, k) + static_cast<size_t>(j) * static_cast<size_t>(gpu.TilePlaneBytes(t));
        for (int b = 0; b < bytes_used; ++b) {
          const int row = row0 + 8 * b;
          const int file_tile = row / file.tile_rows, file_byte = (row % file.tile_rows) / 8;
          const size_t from = ((static_cast<size_t>(file_tile) * static_cast<size_t>(file.cols) + static_cast<size_t>(k)) *
                                   static_cast<size_t>(file.stored_planes) + static_cast<size_t>(j)) *
                                  file_plane_bytes + static_cast<size_t>(file_byte);
          out[b] = file.planes[from];
        }
      }
    }
  }
  const int groups = gpu.groups();
  for (int r = 0; r < gpu.rows; ++r) {
    for (int g = 0; g < groups; ++g) {
      const size_t from = static_cast<size_t>(r) * static_cast<size_t>(groups) + static_cast<size_t>(g);
      scales[gpu.ParamIndex(g, r)] = file.scales[from];
      zeros[gpu.ParamIndex(g, r)] = file.zeros[from];
    }
  }
}

}  // namespace grinqh::cuda
