// The fast encoder's kernels (what each decides: fast_encode_kernels.cuh).
#include <cub/block/block_scan.cuh>
#include "fast_encode_kernels.cuh"

namespace kvr {

constexpr unsigned FULL = 0xffffffffu;

// Whether every lane of the warp holds a block of lane 0's frame: then one lane adds for all.
__device__ inline bool warpOneFrame(bool valid, uint32_t f) {
  uint32_t f0 = __shfl_sync(FULL, f, 0);
  return __all_sync(FULL, valid && f == f0);
}

__device__ inline bool isLane0() { return (threadIdx.x & 31u) == 0u; }

// Thread i: value i of the staging (n values, the sub-batch's f16 frames one after another) to
// its frame's place in x. f32 frames hold empty ranges of `stageOff`, so the last frame whose
// range starts at or before i is the f16 frame that holds it.
__global__ void kWidenF16(const EncFrame* F, uint32_t nf, uint64_t n, const uint16_t* x16, uint32_t* x) {
  uint64_t i = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (i >= n) return;
  uint32_t lo = 0, hi = nf;
  while (hi - lo > 1u) {
    uint32_t m = (lo + hi) >> 1;
    if (F[m].stageOff <= i) lo = m; else hi = m;
  }
  x[F[lo].inOff + (i - F[lo].stageOff)] = widenF16Bits(x16[i]);
}

__global__ void kInit(EncState* st, uint32_t nf, EncTotals* totals) {
  uint32_t f = blockIdx.x * blockDim.x + threadIdx.x;
  if (f == 0) *totals = EncTotals{0, 0, 0, 0};
  if (f >= nf) return;
  EncState s = {};
  s.minKey = 0xffffffffu;
  st[f] = s;
}

__global__ void kMinMax(const EncFrame* F, uint32_t nf, uint32_t nb, const uint32_t* x, EncState* st) {
  uint32_t B = blockIdx.x * blockDim.x + threadIdx.x;
  bool valid = B < nb;
  uint32_t f = valid ? frameOfBlock(F, nf, B) : 0;
  uint32_t mn = 0xffffffffu, mx = 0;
  if (valid) {
    Geo G = geo(F[f], B);
    const uint32_t* p = x + F[f].inOff + (uint64_t)G.r0 * G.cols + G.c;
    for (uint32_t j = 0; j < G.len; j++) {
      uint32_t b = p[(uint64_t)j * G.cols];
      if (finiteBits(b)) {
        uint32_t k = okey(b);
        mn = min(mn, k), mx = max(mx, k);
      }
    }
  }
  if (warpOneFrame(valid, f)) {
    mn = __reduce_min_sync(FULL, mn), mx = __reduce_max_sync(FULL, mx);
    if (isLane0()) atomicMin(&st[f].minKey, mn), atomicMax(&st[f].maxKey, mx);
  } else if (valid) {
    atomicMin(&st[f].minKey, mn), atomicMax(&st[f].maxKey, mx);
  }
}

// The fp32 value of an ordered key (the inverse of okey).
__device__ inline float keyValue(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k ^ 0x80000000u) : ~k);
}

__global__ void kParams(const EncFrame* F, uint32_t nf, EncState* st) {
  uint32_t f = blockIdx.x * blockDim.x + threadIdx.x;
  if (f >= nf) return;
  EncState& s = st[f];
  // ../webgpu/fast/params.ts `frameParams`, in the same double arithmetic (built with -fmad=false)
  double lo = 0, hi = 0, maxAbs = 0;
  if (s.minKey <= s.maxKey) {
    lo = keyValue(s.minKey), hi = keyValue(s.maxKey);
    maxAbs = -lo > hi ? -lo : hi;
  }
  double eb = F[f].mode == 1 ? F[f].bound * (hi - lo) : F[f].bound;
  s.eb = eb;
  if (!isfinite(eb)) { s.status = ST_BOUND_NOT_FINITE; return; }
  if (!(eb > 0)) { s.status = ST_BOUND_ZERO; return; }
  double shrink = (1.0 + maxAbs / eb) * 0x1p-20;
  if (!(shrink <= 0x1p-5)) { s.status = ST_CHECK_EACH; return; }
  float step = (float)(2.0 * eb * (1.0 - shrink));
  if (!(step >= 0x1p-124f) || isinf(step)) { s.status = ST_STEP; return; }
  s.step = step;
  s.inv = (float)(1.0 / (double)step);
}

// width | width without the one largest code << 8 | its slot << 16 (`residualBlocks`)
__device__ inline uint32_t look(const uint32_t* codes, uint32_t len, uint32_t orv) {
  uint32_t w = bitWidth(orv);
  if (w < 2u) return w | (w << 8);
  uint32_t t = w - 1u, tops = 0, top = 0, rest = 0;
  for (uint32_t j = 0; j < len; j++) {
    uint32_t code = codes[j], hit = code >> t;
    tops += hit;
    if (hit) top = j; else rest |= code;
  }
  if (tops == 1u) return w | (bitWidth(rest) << 8) | (top << 16);
  return w | (w << 8);
}

__global__ void kBlockStats(const EncFrame* F, uint32_t nf, uint32_t nb, const uint32_t* x, EncState* st,
                            uint2* meta) {
  uint32_t B = blockIdx.x * blockDim.x + threadIdx.x;
  bool valid = B < nb;
  uint32_t f = valid ? frameOfBlock(F, nf, B) : 0;
  uint32_t sN = 0, sD = 0, nExc = 0;
  if (valid && st[f].status == 0) {
    Geo G = geo(F[f], B);
    float inv = st[f].inv;
    uint32_t cn[BLOCK], cd[BLOCK];
    uint32_t orN = 0, orC = 0, orD = 0;
    int32_t prev = 0;
    const uint32_t* p = x + F[f].inOff + (uint64_t)G.r0 * G.cols + G.c;
    for (uint32_t j = 0; j < G.len; j++) {
      uint32_t a = 0, d = 0;
      int32_t q;
      if (quant(p[(uint64_t)j * G.cols], inv, &q)) {
        a = zz(q), d = zz(q - prev);
        prev = q;
        orC |= a;
      } else {
        nExc++;
        orC |= zz(prev); // the sample repeats the previous value (`choosePredictor`)
      }
      cn[j] = a, cd[j] = d;
      orN |= a, orD |= d;
    }
    meta[B] = make_uint2(look(cn, G.len, orN), look(cd, G.len, orD));
    if (F[f].pred == PRED_AUTO && G.g % F[f].stride == 0) {
      sN = G.len * bitWidth(orC);
      sD = G.len * bitWidth(orD);
    }
  }
  if (warpOneFrame(valid, f)) {
    sN = __reduce_add_sync(FULL, sN), sD = __reduce_add_sync(FULL, sD), nExc = __reduce_add_sync(FULL, nExc);
    valid = isLane0();
  }
  if (valid) {
    if (sN) atomicAdd(&st[f].noneBits, sN);
    if (sD) atomicAdd(&st[f].deltaBits, sD);
    if (nExc) atomicAdd(&st[f].exceptions, nExc);
  }
}

__global__ void kDecide0(const EncFrame* F, uint32_t nf, uint32_t nb, const uint2* meta, EncState* st,
                         uint32_t* sel) {
  uint32_t B = blockIdx.x * blockDim.x + threadIdx.x;
  bool valid = B < nb;
  uint32_t f = valid ? frameOfBlock(F, nf, B) : 0;
  uint32_t cand = 0;
  if (valid && st[f].status == 0) {
    uint32_t pred = F[f].pred;
    uint32_t d = pred == PRED_AUTO ? (st[f].deltaBits < st[f].noneBits ? 1u : 0u) : pred;
    Geo G = geo(F[f], B);
    uint2 m = meta[B];
    uint32_t s = d == 1u ? m.y : m.x;
    uint32_t w1 = s & 0xffu, w2 = (s >> 8) & 0xffu;
    if ((w1 - w2) * G.len > SLOT_BITS + w1) cand = w1; // first pass: priced at its own width
    sel[B] = s;
    if (G.b == 0) st[f].predictor = d;
  }
  if (warpOneFrame(valid, f)) {
    cand = __reduce_max_sync(FULL, cand);
    valid = isLane0();
  }
  if (valid && cand) atomicMax(&st[f].wo0, cand);
}

__global__ void kDecide1(const EncFrame* F, uint32_t nf, uint32_t nb, EncState* st, uint32_t* sel,
                         uint32_t* words, uint32_t* apart) {
  uint32_t B = blockIdx.x * blockDim.x + threadIdx.x;
  if (B == 0) words[nb] = 0, apart[nb] = 0;
  bool valid = B < nb;
  uint32_t f = valid ? frameOfBlock(F, nf, B) : 0;
  uint32_t ob = 0;
  if (valid) {
    if (st[f].status == 0) {
      Geo G = geo(F[f], B);
      uint32_t s = sel[B], w1 = s & 0xffu, w2 = (s >> 8) & 0xffu;
      // second pass: priced at the width the first pass gave the frame's outliers
      bool ap = (w1 - w2) * G.len > SLOT_BITS + st[f].wo0;
      uint32_t w = ap ? w2 : w1;
      sel[B] = (ap ? (w2 | OUTLIER_FLAG) : w1) | (s & 0xff0000u);
      words[B] = blockWords(G.len, w);
      apart[B] = ap ? 1u : 0u;
      if (ap) ob = w1;
    } else {
      words[B] = 0, apart[B] = 0;
    }
  }
  if (warpOneFrame(valid, f)) {
    ob = __reduce_max_sync(FULL, ob);
    valid = isLane0();
  }
  if (valid && ob) atomicMax(&st[f].outlierBits, ob);
}

__global__ void kLayout(const EncFrame* F, uint32_t nf, const uint32_t* scanW, const uint32_t* scanA,
                        EncState* st, EncTotals* totals, uint64_t cap) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  uint64_t pos = 0;
  uint32_t outWords = 0;
  for (uint32_t f = 0; f < nf; f++) {
    EncState& s = st[f];
    const EncFrame& fr = F[f];
    s.outWordStart = outWords;
    s.rankBase = scanA[fr.blockStart];
    if (s.status != 0) continue;
    s.payloadWords = scanW[fr.blockStart + fr.blocks] - scanW[fr.blockStart];
    s.outliers = scanA[fr.blockStart + fr.blocks] - scanA[fr.blockStart];
    uint32_t oWords = (uint32_t)(((uint64_t)s.outliers * (SLOT_BITS + s.outlierBits) + 31u) / 32u);
    uint64_t widthBytes = align4(fr.blocks);
    uint64_t bodyLen = HEADER_BYTES + widthBytes + 4ull * oWords + 4ull * s.payloadWords + 8ull * s.exceptions;
    uint64_t bodyAt = (pos + fr.reserve + 3u) & ~3ull;
    // offsets are u32 words and bytes: a sub-batch's output stays under 4 GiB
    if (bodyAt + bodyLen > cap || bodyAt + bodyLen > 0xffffffffull) { s.status = ST_CAPACITY; continue; }
    s.bodyAt = (uint32_t)bodyAt, s.bodyLen = (uint32_t)bodyLen, s.outlierWords = oWords;
    s.outlierWord = (uint32_t)((bodyAt + HEADER_BYTES + widthBytes) / 4);
    s.payloadWord = s.outlierWord + oWords;
    s.excWord = s.payloadWord + s.payloadWords;
    pos = bodyAt + bodyLen;
    outWords += oWords;
  }
  totals->bytes = (uint32_t)pos;
  totals->outWords = outWords;
}

__global__ void kPack(const EncFrame* F, uint32_t nf, uint32_t nb, const uint32_t* x, const EncState* st,
                      const uint32_t* sel, const uint32_t* scanW, const uint32_t* scanA, uint32_t* out,
                      unsigned long long* ent) {
  uint32_t B = blockIdx.x * blockDim.x + threadIdx.x;
  if (B >= nb) return;
  uint32_t f = frameOfBlock(F, nf, B);
  const EncState& s = st[f];
  if (s.status != 0) return;
  const EncFrame& fr = F[f];
  Geo G = geo(fr, B);
  uint32_t sl = sel[B], w = sl & 0x3fu, slot = (sl >> 16) & 0xffu;
  bool ap = (sl & OUTLIER_FLAG) != 0;
  if ((G.b & 3u) == 0) { // four width bytes a word; the padding bytes stay 0
    uint32_t word = 0;
    for (uint32_t k = 0; k < 4u && G.b + k < fr.blocks; k++) word |= (sel[B + k] & 0xffu) << (8u * k);
    out[s.bodyAt / 4 + HEADER_BYTES / 4 + (G.b >> 2)] = word;
  }
  bool delta = s.predictor == 1u;
  float inv = s.inv;
  uint32_t o = s.payloadWord + (scanW[B] - scanW[fr.blockStart]);
  const uint32_t* p = x + fr.inOff + (uint64_t)G.r0 * G.cols + G.c;
  int32_t prev = 0;
  uint32_t acc = 0, nbits = 0;
  for (uint32_t j = 0; j < G.len; j++) {
    int32_t q;
    uint32_t code = 0;
    if (quant(p[(uint64_t)j * G.cols], inv, &q)) {
      code = delta ? zz(q - prev) : zz(q);
      prev = q;
    }
    if (ap && j == slot) {
      ent[scanA[B]] = (unsigned long long)slot | ((unsigned long long)code << SLOT_BITS);
      code = 0;
    }
    if (w != 0) {
      acc |= code << nbits;
      nbits += w;
      if (nbits >= 32u) {
        out[o++] = acc;
        nbits -= 32u;
        acc = nbits > 0 ? code >> (w - nbits) : 0u;
      }
    }
  }
  if (nbits > 0) out[o] = acc;
}

__global__ void kOutlierWords(const EncState* st, uint32_t nf, const EncTotals* totals,
                              const unsigned long long* ent, uint32_t* out) {
  uint32_t t = blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= totals->outWords) return;
  // the last frame whose first outlier word is at most t: the one whose words hold t
  uint32_t lo = 0, hi = nf;
  while (hi - lo > 1u) {
    uint32_t m = (lo + hi) >> 1;
    if (st[m].outWordStart <= t) lo = m; else hi = m;
  }
  const EncState& s = st[lo];
  uint32_t k = t - s.outWordStart;
  uint64_t sz = SLOT_BITS + s.outlierBits;
  uint64_t bit0 = 32ull * k;
  uint64_t e0 = bit0 / sz, e1 = min((uint64_t)s.outliers - 1u, (bit0 + 31u) / sz);
  uint32_t word = 0;
  for (uint64_t q = e0; q <= e1; q++) {
    unsigned long long v = ent[s.rankBase + q];
    uint64_t p = q * sz;
    word |= p >= bit0 ? (uint32_t)(v << (p - bit0)) : (uint32_t)(v >> (bit0 - p));
  }
  out[s.outlierWord + k] = word;
}

// One CUDA block per frame: exceptions in index order, 256 values a round, ranked by a block scan.
__global__ void kExceptions(const EncFrame* F, const EncState* st, const uint32_t* x, uint32_t* out) {
  using Scan = cub::BlockScan<uint32_t, 256>;
  __shared__ typename Scan::TempStorage tmp;
  const EncState& s = st[blockIdx.x];
  if (s.status != 0 || s.exceptions == 0) return;
  const EncFrame& fr = F[blockIdx.x];
  uint64_t n = (uint64_t)fr.rows * fr.cols;
  float inv = s.inv;
  uint32_t base = 0;
  for (uint64_t i0 = 0; i0 < n; i0 += 256) {
    uint64_t i = i0 + threadIdx.x;
    uint32_t bits = 0, isExc = 0;
    int32_t q;
    if (i < n) {
      bits = x[fr.inOff + i];
      isExc = quant(bits, inv, &q) ? 0u : 1u;
    }
    uint32_t rank, total;
    Scan(tmp).ExclusiveSum(isExc, rank, total);
    if (isExc) {
      out[s.excWord + base + rank] = (uint32_t)i;
      out[s.excWord + s.exceptions + base + rank] = bits;
    }
    base += total;
    __syncthreads();
  }
}

__global__ void kHeader(const EncFrame* F, uint32_t nf, const EncState* st, uint32_t* out) {
  uint32_t f = blockIdx.x * blockDim.x + threadIdx.x;
  if (f >= nf || st[f].status != 0) return;
  const EncState& s = st[f];
  uint32_t* h = out + s.bodyAt / 4;
  auto f64 = [&](uint32_t at, double v) {
    unsigned long long b = __double_as_longlong(v);
    h[at] = (uint32_t)b, h[at + 1] = (uint32_t)(b >> 32);
  };
  h[0] = 0x46u | (s.predictor << 8) | (F[f].mode << 16); // 'F', predictor, mode, 0
  f64(1, F[f].bound);
  f64(3, s.eb);
  f64(5, (double)s.step);
  h[7] = s.outliers;
  h[8] = s.outlierBits;
  h[9] = s.exceptions;
  h[10] = s.payloadWords;
}

} // namespace kvr
