#include "engine/quant/quant.h"

#include <algorithm>
#include <cmath>

#include "engine/base/half.h"

namespace grinqh::quant {

float RoundToHalf(float value) { return HalfToFloat(HalfBits(value)); }

float TruncatedCode(uint8_t code, int bits, int level) {
  const int dropped = bits - level;
  const int top = code >> dropped;
  return static_cast<float>(top << dropped) + 0.5f * static_cast<float>((1 << dropped) - 1);
}

GroupParams ChooseGroupParams(float lo, float hi, int bits) {
  lo = std::min(lo, 0.f);
  hi = std::max(hi, 0.f);
  const float max_code = static_cast<float>((1 << bits) - 1);
  float scale = (hi - lo) / max_code;
  if (scale == 0.f) scale = 1.f;  // an all-zero group: any scale reproduces it
  scale = RoundToHalf(scale);
  const float zero = std::clamp(std::round(-lo / scale), 0.f, max_code);
  return {scale, zero};
}

uint8_t QuantizeValue(float w, GroupParams params, int bits) {
  const float max_code = static_cast<float>((1 << bits) - 1);
  return static_cast<uint8_t>(std::clamp(std::round(w / params.scale + params.zero), 0.f, max_code));
}

std::vector<float> QuantizedMatrix::Dequantize() const { return DequantizeLevel(bits); }

std::vector<float> QuantizedMatrix::DequantizeLevel(int level) const {
  std::vector<float> out(codes.size(), 0.f);
  if (level <= 0) return out;
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r) * static_cast<size_t>(cols) + static_cast<size_t>(c);
      const size_t p = param_index(r, c);
      out[i] = scales[p] * (TruncatedCode(codes[i], bits, level) - zeros[p]);
    }
  }
  return out;
}

QuantizedMatrix QuantizeRtn(std::span<const float> weights, int rows, int cols, int bits, int group_size) {
  QuantizedMatrix q{rows, cols, bits, group_size, {}, {}, {}};
  q.codes.resize(weights.size());
  q.scales.resize(static_cast<size_t>(rows) * static_cast<size_t>(q.groups()));
  q.zeros.resize(q.scales.size());
  for (int r = 0; r < rows; ++r) {
    const float* row = weights.data() + static_cast<size_t>(r) * static_cast<size_t>(cols);
    for (int c0 = 0; c0 < cols; c0 += group_size) {
      const int c1 = std::min(cols, c0 + group_size);
      const auto [lo, hi] = std::minmax_element(row + c0, row + c1);
      const GroupParams params = ChooseGroupParams(*lo, *hi, bits);
      q.scales[q.param_index(r, c0)] = params.scale;
      q.zeros[q.param_index(r, c0)] = params.zero;
      for (int c = c0; c < c1; ++c) {
        q.codes[static_cast<size_t>(r) * static_cast<size_t>(cols) + static_cast<size_t>(c)] =
            QuantizeValue(row[c], params, bits);
      }
    }
  }
  return q;
}

}  // namespace grinqh::quant
