// fp16 bits → fp32 bits, exactly as shared/dtype `f16Table32` holds them: the encoder's fp16
// input mode uploads the halves and widens them on the device (kWidenF16), and its streams must
// be the CPU encoder's of `toFloat32(t)` byte for byte, exceptions (raw fp32 bits) included.
// Integer arithmetic only: the table holds one NaN for all 2046 fp16 NaNs (0x7fc00000, the quiet
// NaN JS writes for `NaN`), which a hardware conversion (`__half2float`) need not give: it may
// keep a NaN's sign and payload. Plain C++ when nvcc is not the compiler, so
// testdata/f16_widen_check.cpp checks it against the table on any host.
#pragma once
#include <cstdint>

#ifdef __CUDACC__
#define KVR_HOST_DEVICE __host__ __device__
#else
#define KVR_HOST_DEVICE
#endif

namespace kvr {

// The fp32 bits of the fp16 value with bits `h`.
KVR_HOST_DEVICE inline uint32_t widenF16Bits(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, hexp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
  if (hexp == 0x1fu) return mant != 0u ? 0x7fc00000u : (sign | 0x7f800000u); // NaN: the table's one
  if (hexp != 0u) return sign | ((hexp + 112u) << 23) | (mant << 13);        // rebias 15 → 127
  if (mant == 0u) return sign;                                                // ±0
  // subnormal, mant · 2^-24: shift the leading 1 up to bit 10 (the implicit bit), one step down
  // from 2^-14 (fp32 exponent 113) for each shift
  uint32_t fexp = 113u;
  while ((mant & 0x400u) == 0u) mant <<= 1, fexp--;
  return sign | (fexp << 23) | ((mant & 0x3ffu) << 13);
}

} // namespace kvr
