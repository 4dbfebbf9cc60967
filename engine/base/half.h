// IEEE fp16 conversions (scales and zeros are stored as fp16; F16 checkpoints exist).
#pragma once

#include <bit>
#include <cstdint>

// GCC (and clang from 15) convert through the hardware's _Float16; clang 14, which the fuzz
// build uses (libFuzzer), has no _Float16 on x86, so there the same rounding is done in
// integer arithmetic (the results agree for every value except NaN payloads).
#if defined(__clang__) && __clang_major__ < 15 && (defined(__x86_64__) || defined(__i386__))
#define GRINQH_SOFT_HALF 1
#endif

namespace grinqh {

#ifndef GRINQH_SOFT_HALF
// The fp16 nearest to `value` (round to nearest even), as its bits.
inline uint16_t HalfBits(float value) { return std::bit_cast<uint16_t>(static_cast<_Float16>(value)); }
// The value of fp16 bits, exactly.
inline float HalfToFloat(uint16_t bits) { return static_cast<float>(std::bit_cast<_Float16>(bits)); }
#else
inline uint16_t HalfBits(float value) {
  // F. Giesen's float_to_half_fast3_rtne: subnormals rounded by a float addition, normals by
  // adding half an ulp (plus the odd bit, for ties to even) before truncating.
  uint32_t f = std::bit_cast<uint32_t>(value);
  const uint32_t sign = f & 0x80000000u;
  f ^= sign;
  uint32_t half;
  if (f >= (127u + 16u) << 23) {  // too large for fp16 (or inf / NaN)
    half = f > 255u << 23 ? 0x7e00u : 0x7c00u;
  } else if (f < 113u << 23) {  // an fp16 subnormal or zero
    constexpr uint32_t kMagic = ((127u - 15u) + (23u - 10u) + 1u) << 23;
    half = std::bit_cast<uint32_t>(std::bit_cast<float>(f) + std::bit_cast<float>(kMagic)) - kMagic;
  } else {
    const uint32_t odd = (f >> 13) & 1u;
    f += ((15u - 127u) << 23) + 0xfffu + odd;  // rebias the exponent, round
    half = f >> 13;
  }
  return static_cast<uint16_t>(half | (sign >> 16));
}
inline float HalfToFloat(uint16_t bits) {
  const uint32_t sign = static_cast<uint32_t>(bits & 0x8000u) << 16;
  const uint32_t exponent = (bits >> 10) & 0x1fu;
  const uint32_t mantissa = bits & 0x3ffu;
  if (exponent == 0) {  // zero or subnormal: mantissa × 2^-24, exact in float
    const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
    return sign != 0 ? -magnitude : magnitude;
  }
  const uint32_t out_exponent = exponent == 0x1fu ? 0xffu : exponent + (127u - 15u);
  return std::bit_cast<float>(sign | out_exponent << 23 | mantissa << 13);
}
#endif

}  // namespace grinqh
