// The fast format's integer helpers on the device (../fast/layout.ts), shared by the encode
// and decode kernels: ordered keys, bit widths, zigzag, block words, and the quantizer whose
// one float operation is the fp32 product y = f32(x * inv) (../fast/kernels.ts
// `quantizeGroup`; the range test and the rounding read y's bits, so neither NaN, infinity
// nor a rounding built-in is involved).
#pragma once
#include <cstdint>

namespace kvr {

constexpr uint32_t BLOCK = 32;
constexpr uint32_t HEADER_BYTES = 44;
constexpr uint32_t SLOT_BITS = 5;
constexpr uint32_t OUTLIER_FLAG = 0x40;
constexpr uint32_t MAX_WIDTH = 31;

__host__ __device__ inline uint32_t align4(uint32_t n) { return (n + 3u) & ~3u; }
__device__ inline uint32_t okey(uint32_t b) { return (b & 0x80000000u) ? ~b : (b | 0x80000000u); }
__device__ inline bool finiteBits(uint32_t b) { return (b & 0x7f800000u) != 0x7f800000u; }
__device__ inline uint32_t bitWidth(uint32_t v) { return 32u - __clz(v); }
__device__ inline uint32_t zz(int32_t e) { return (uint32_t)((e << 1) ^ (e >> 31)); }
__device__ inline int32_t unzz(uint32_t c) { return (int32_t)(c >> 1) ^ -(int32_t)(c & 1u); }
__host__ __device__ inline uint32_t blockWords(uint32_t len, uint32_t w) { return (len * w + 31u) >> 5; }
__device__ inline uint32_t lowMask(uint32_t w) { return w >= 32u ? 0xffffffffu : (1u << w) - 1u; }

// y (bits, |y| < 2^23) rounded to the nearest integer, ties to even, in integer arithmetic
__device__ inline int32_t roundBits(uint32_t b) {
  uint32_t a = b & 0x7fffffffu;
  uint32_t e = a >> 23;
  if (e < 126u) return 0; // |y| < 0.5, zeros and subnormals included
  uint32_t m = (a & 0x7fffffu) | 0x800000u;
  uint32_t sh = 150u - e; // 1..24
  uint32_t half = 1u << (sh - 1u);
  uint32_t rem = m & ((half << 1) - 1u);
  uint32_t q = m >> sh;
  if (rem > half || (rem == half && (q & 1u))) q += 1u;
  return (b & 0x80000000u) ? -(int32_t)q : (int32_t)q;
}

// true and q for a value that quantizes; false for an exception (non-finite, |y| >= 2^23)
__device__ inline bool quant(uint32_t bits, float inv, int32_t* q) {
  if (!finiteBits(bits)) return false;
  uint32_t y = __float_as_uint(__fmul_rn(__uint_as_float(bits), inv));
  if ((y & 0x7fffffffu) >= 0x4b000000u) return false;
  *q = roundBits(y);
  return true;
}

// the last frame whose `start[f]` is at most i (starts nondecreasing; empty ranges share them)
__device__ inline uint32_t frameOf(const uint32_t* start, uint32_t nf, uint32_t i) {
  uint32_t lo = 0, hi = nf;
  while (hi - lo > 1u) {
    uint32_t m = (lo + hi) >> 1;
    if (start[m] <= i) lo = m; else hi = m;
  }
  return lo;
}

// The frame of a sub-batch that block B falls in: frames sorted by `blockStart`, binary search
// (encode's and decode's frame tables both carry it)
template <class Frame>
__device__ inline uint32_t frameOfBlock(const Frame* F, uint32_t nf, uint32_t B) {
  uint32_t lo = 0, hi = nf;
  while (hi - lo > 1u) {
    uint32_t m = (lo + hi) >> 1;
    if (F[m].blockStart <= B) lo = m; else hi = m;
  }
  return lo;
}

} // namespace kvr
