// IEEE fp16 conversions (scales and zeros are stored as fp16; F16 checkpoints exist).
#pragma once

#include <bit>
#include <cstdint>

namespace grinqh {

// The fp16 nearest to `value` (round to nearest even), as its bits.
inline uint16_t HalfBits(float value) { return std::bit_cast<uint16_t>(static_cast<_Float16>(value)); }
// The value of fp16 bits, exactly.
inline float HalfToFloat(uint16_t bits) { return static_cast<float>(std::bit_cast<_Float16>(bits)); }

}  // namespace grinqh
