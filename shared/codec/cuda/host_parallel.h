// Host work the library spreads over the CPU's cores: copies out of pinned memory into the
// caller's (fresh, page-faulting) memory, and crc32 of the streams' bodies. One thread writing
// fresh pages managed about 1–2 GB/s; the cores together keep up with the bus.
#pragma once
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <sys/mman.h>
#include <thread>
#include <vector>

namespace kvr {

inline unsigned hostThreads() {
  unsigned n = std::thread::hardware_concurrency();
  return std::max(1u, std::min(n == 0 ? 4u : n, 16u));
}

// Runs f(i) for i in [0, n), spread over the threads (contiguous ranges).
template <class F> void parallelFor(size_t n, F f) {
  unsigned t = (unsigned)std::min<size_t>(hostThreads(), n);
  if (t <= 1) {
    for (size_t i = 0; i < n; i++) f(i);
    return;
  }
  std::vector<std::thread> pool;
  for (unsigned k = 0; k < t; k++) {
    pool.emplace_back([=] {
      for (size_t i = n * k / t; i < n * (k + 1) / t; i++) f(i);
    });
  }
  for (auto& th : pool) th.join();
}

// Asks for 2 MiB pages over the whole 2 MiB-aligned part of `[p, p + bytes)`: fresh memory then
// faults in 512 times less often (a hint; ignored where transparent huge pages are off).
inline void hugePages(void* p, size_t bytes) {
  constexpr uintptr_t H = 2u << 20;
  uintptr_t a = (reinterpret_cast<uintptr_t>(p) + H - 1) & ~(H - 1);
  uintptr_t b = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(H - 1);
  if (b > a) madvise(reinterpret_cast<void*>(a), b - a, MADV_HUGEPAGE);
}

// One copy of many: `len` bytes from `src` to `dst`.
struct CopyJob {
  uint8_t* dst;
  const uint8_t* src;
  size_t len;
};

// The jobs in slices of 1 MiB, all slices spread over the threads at once.
inline void parallelCopy(const std::vector<CopyJob>& jobs) {
  constexpr size_t SLICE = 1u << 20;
  std::vector<CopyJob> slices;
  for (const CopyJob& j : jobs) {
    for (size_t at = 0; at < j.len; at += SLICE) {
      slices.push_back(CopyJob{j.dst + at, j.src + at, std::min(SLICE, j.len - at)});
    }
  }
  parallelFor(slices.size(), [&](size_t i) { std::memcpy(slices[i].dst, slices[i].src, slices[i].len); });
}

inline void parallelCopy(void* dst, const void* src, size_t bytes) {
  parallelCopy({CopyJob{static_cast<uint8_t*>(dst), static_cast<const uint8_t*>(src), bytes}});
}

// crc32 (the zlib polynomial, as node:zlib's crc32), slicing by 8.
inline const uint32_t (&crcTables())[8][256] {
  static uint32_t t[8][256];
  static bool made = [] {
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++) {
      for (int s = 1; s < 8; s++) t[s][i] = (t[s - 1][i] >> 8) ^ t[0][t[s - 1][i] & 0xffu];
    }
    return true;
  }();
  (void)made;
  return t;
}

inline uint32_t crc32(const uint8_t* p, size_t n) {
  const auto& t = crcTables();
  uint32_t c = 0xffffffffu;
  while (n && (reinterpret_cast<uintptr_t>(p) & 7)) c = t[0][(c ^ *p++) & 0xffu] ^ (c >> 8), n--;
  while (n >= 8) {
    uint32_t a, b;
    std::memcpy(&a, p, 4), std::memcpy(&b, p + 4, 4);
    a ^= c;
    c = t[7][a & 0xff] ^ t[6][(a >> 8) & 0xff] ^ t[5][(a >> 16) & 0xff] ^ t[4][a >> 24] ^ t[3][b & 0xff] ^
        t[2][(b >> 8) & 0xff] ^ t[1][(b >> 16) & 0xff] ^ t[0][b >> 24];
    p += 8, n -= 8;
  }
  while (n--) c = t[0][(c ^ *p++) & 0xffu] ^ (c >> 8);
  return ~c;
}

} // namespace kvr
