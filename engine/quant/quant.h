// Group-wise asymmetric weight quantization, the common ground of every method here.
//
// A [rows × cols] matrix maps cols inputs to rows outputs (y = W x). Each row is cut into
// groups of `group_size` consecutive input channels; each (row, group) has a scale and a
// zero point, stored as fp16 values, and each weight a `bits`-bit code q in [0, 2^bits):
//   w ≈ scale · (q − zero)
// GRINQH stores 8-bit codes once and reads any level b ≤ 8 from them: the b-bit
// approximation is the top b bits of q read back at the centre of their interval.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace grinqh::quant {

// The index of (row, col) in a row-major matrix with `stride` columns.
inline size_t At(int row, int col, int stride) {
  return static_cast<size_t>(row) * static_cast<size_t>(stride) + static_cast<size_t>(col);
}

struct QuantizedMatrix {
  int rows = 0;
  int cols = 0;
  int bits = 8;
  int group_size = 128;
  std::vector<uint8_t> codes;  // [rows × cols], row-major
  std::vector<float> scales;   // [rows × groups()], fp16-representable
  std::vector<float> zeros;    // [rows × groups()], in code units, fp16-representable

  int groups() const { return (cols + group_size - 1) / group_size; }
  size_t param_index(int row, int col) const {
    return static_cast<size_t>(row) * static_cast<size_t>(groups()) + static_cast<size_t>(col / group_size);
  }

  // The full-depth weights, [rows × cols] fp32.
  std::vector<float> Dequantize() const;
  // The weights read at level `level` (0..bits): the top `level` bits of each code, read
  // at the centre of the interval of codes sharing them. Level 0 gives zeros (skipped).
  std::vector<float> DequantizeLevel(int level) const;
};

// The value a code truncated to `level` of its `bits` bits stands for, in code units:
// the centre of the interval [top << (bits−level), (top + 1) << (bits−level)).
float TruncatedCode(uint8_t code, int bits, int level);

// Rounds to the nearest fp16 value (scales and zeros are stored as fp16).
float RoundToHalf(float value);

// Scale and zero for a group with the given extremes, as GPTQ's quantizer chooses them:
// the range [min(lo, 0), max(hi, 0)] spread over 2^bits − 1 steps, zero rounded to a code.
struct GroupParams {
  float scale;
  float zero;
};
GroupParams ChooseGroupParams(float lo, float hi, int bits);

// The code of w under the given parameters: round(w / scale + zero), clamped.
uint8_t QuantizeValue(float w, GroupParams params, int bits);

// Round-to-nearest: every group gets its min/max parameters, every weight its nearest code.
QuantizedMatrix QuantizeRtn(std::span<const float> weights, int rows, int cols, int bits, int group_size);

}  // namespace grinqh::quant
