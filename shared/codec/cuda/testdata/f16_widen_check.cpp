// Host check of ../f16_widen.h (built by g++ from ../f16_widen_test.ts): widenF16Bits against
// the table in the file argv[1], the 65,536 fp32 bit patterns of shared/dtype `f16Table32`
// (little-endian u32, fp16 bits ascending). Prints "all 65536 ok", or the first mismatches and
// their count (exit 1).
#include <cstdio>
#include <vector>
#include "../f16_widen.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s TABLE\n", argv[0]);
    return 2;
  }
  std::FILE* f = std::fopen(argv[1], "rb");
  if (!f) {
    std::fprintf(stderr, "cannot open %s\n", argv[1]);
    return 2;
  }
  std::vector<unsigned char> b(4 * 65536);
  size_t got = std::fread(b.data(), 1, b.size(), f);
  std::fclose(f);
  if (got != b.size()) {
    std::fprintf(stderr, "%s: %zu bytes, want %zu\n", argv[1], got, b.size());
    return 2;
  }
  unsigned bad = 0;
  for (uint32_t h = 0; h < 65536; h++) {
    const unsigned char* p = &b[4 * h];
    uint32_t want = p[0] | (p[1] << 8) | (p[2] << 16) | ((uint32_t)p[3] << 24);
    uint32_t have = kvr::widenF16Bits((uint16_t)h);
    if (have != want && bad++ < 8) std::printf("f16 %04x: widened %08x, table %08x\n", h, have, want);
  }
  if (bad) {
    std::printf("%u of 65536 differ\n", bad);
    return 1;
  }
  std::printf("all 65536 ok\n");
  return 0;
}
