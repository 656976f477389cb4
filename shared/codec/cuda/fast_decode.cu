// kvr_fast_decode: bodies the host has checked (header, section sizes against the body length,
// exception indices) are copied into pinned staging by host threads, which take each body's
// crc32 on the way (a body that does not match its digest is never decoded), and go up in one
// copy; on the device each block's width byte gives its words
// and outlier flag, a cub scan gives every block's offsets, the per-frame totals are checked
// against the header, and then (only for frames that pass, so every read stays inside its
// body) each block decodes independently: outlier, codes, q (zigzag, running sum for delta,
// wrapping as int32), f32(q) * step straight into the output. Exceptions' raw bits land last.
// The statuses come back first; then only the frames that passed go to their host memory: by
// DMA straight into memory the caller page-locked, else (after every sub-batch) in 64 MiB
// pieces through two pinned buffers, each copied out by host threads while the next is on the
// bus. Sub-batches of frames are pipelined on one stream: the host stages and checks k + 1
// while the bus brings the values of k - 1, and the upload and kernels of k (short) run.
//
// Status per frame: 1 corrupt (a width byte, an outlier slot or a total disagrees with the
// header: the CPU decoder then throws its typed error), 2 a code past 2^23 (never written by
// the encoder; past the range where the fp32 product equals the CPU's: the CPU decodes it),
// 4 the body's crc32 is not its digest (the CPU decoder throws its error).
#include <cub/device/device_scan.cuh>
#include <cstring>
#include <vector>
#include "context.cuh"
#include "fast_format.cuh"
#include "kvrelay_cuda.h"
#include "host_parallel.h"

using namespace kvr;

namespace {

constexpr uint32_t CORRUPT = 1, BIG_Q = 2, DIGEST = 4;

struct DecFrame {
  uint64_t outOff;
  uint32_t srcWord, srcWords, rows, cols, blockStart, blocks;
  uint32_t delta, outlierBits, outlierWord, payloadWord, outliers, payloadWords;
  float step;
  uint32_t pad;
};

__device__ inline uint32_t widthByte(const uint32_t* src, const DecFrame& f, uint32_t b) {
  return (src[f.srcWord + HEADER_BYTES / 4 + (b >> 2)] >> ((b & 3u) * 8u)) & 0xffu;
}

// w bits (at most 31) at bit `bit` from word `base`, LSB first (a frame's outlier section may
// pass 2^32 bits: 36 bits an outlier, one per block)
__device__ inline uint32_t take(const uint32_t* src, uint32_t base, uint64_t bit, uint32_t w) {
  if (w == 0) return 0;
  uint64_t i = base + (bit >> 5);
  uint32_t sh = (uint32_t)bit & 31u;
  uint32_t v = src[i] >> sh;
  if (sh + w > 32u) v |= src[i + 1] << (32u - sh);
  return v & lowMask(w);
}

__global__ void kWidths(const DecFrame* F, uint32_t nf, uint32_t nb, const uint32_t* src, uint32_t* words,
                        uint32_t* flags, uint32_t* status) {
  uint32_t B = blockIdx.x * blockDim.x + threadIdx.x;
  if (B == 0) words[nb] = 0, flags[nb] = 0;
  if (B >= nb) return;
  uint32_t f = frameOfBlock(F, nf, B);
  const DecFrame& fr = F[f];
  uint32_t b = B - fr.blockStart, g = b / fr.cols, len = min(BLOCK, fr.rows - g * BLOCK);
  uint32_t wb = widthByte(src, fr, b);
  if ((wb & 0x80u) || (wb & 0x3fu) > MAX_WIDTH) atomicOr(&status[f], CORRUPT);
  words[B] = blockWords(len, min(wb & 0x3fu, MAX_WIDTH));
  flags[B] = (wb >> 6) & 1u;
}

__global__ void kTotals(const DecFrame* F, uint32_t nf, const uint32_t* scanW, const uint32_t* scanA,
                        uint32_t* status) {
  uint32_t f = blockIdx.x * blockDim.x + threadIdx.x;
  if (f >= nf) return;
  const DecFrame& fr = F[f];
  uint32_t s0 = fr.blockStart, s1 = fr.blockStart + fr.blocks;
  if (scanW[s1] - scanW[s0] != fr.payloadWords || scanA[s1] - scanA[s0] != fr.outliers) {
    atomicOr(&status[f], CORRUPT);
  }
}

__global__ void kBlocks(const DecFrame* F, uint32_t nf, uint32_t nb, const uint32_t* src, const uint32_t* scanW,
                        const uint32_t* scanA, uint32_t* status, float* out) {
  uint32_t B = blockIdx.x * blockDim.x + threadIdx.x;
  if (B >= nb) return;
  uint32_t f = frameOfBlock(F, nf, B);
  if (status[f] & (CORRUPT | DIGEST)) return; // offsets from bad widths could point anywhere: read nothing
  const DecFrame& fr = F[f];
  uint32_t b = B - fr.blockStart, g = b / fr.cols, c = b - g * fr.cols, r0 = g * BLOCK;
  uint32_t len = min(BLOCK, fr.rows - r0);
  uint32_t wb = widthByte(src, fr, b), w = wb & 0x3fu;
  uint32_t slot = BLOCK, big = 0;
  if (wb & OUTLIER_FLAG) {
    uint64_t at = (uint64_t)(scanA[B] - scanA[fr.blockStart]) * (SLOT_BITS + fr.outlierBits);
    slot = take(src, fr.outlierWord, at, SLOT_BITS);
    big = take(src, fr.outlierWord, at + SLOT_BITS, fr.outlierBits);
    if (slot >= len) { atomicOr(&status[f], CORRUPT); return; }
  }
  uint32_t base = fr.payloadWord + (scanW[B] - scanW[fr.blockStart]);
  float step = fr.step;
  float* o = out + fr.outOff + (uint64_t)r0 * fr.cols + c;
  int32_t prev = 0;
  bool bigQ = false;
  for (uint32_t j = 0; j < len; j++) {
    uint32_t code = j == slot ? big : take(src, base, j * w, w);
    int32_t q = unzz(code);
    if (fr.delta) q = (int32_t)((uint32_t)prev + (uint32_t)q);
    prev = q;
    if (q >= 0x800000 || q <= -0x800000) bigQ = true;
    o[(uint64_t)j * fr.cols] = __fmul_rn((float)q, step);
  }
  if (bigQ) atomicOr(&status[f], BIG_Q);
}

__global__ void kExc(const uint2* exc, uint64_t n, uint32_t* out) {
  uint64_t t = (uint64_t)blockIdx.x * blockDim.x + threadIdx.x;
  if (t >= n) return;
  uint2 e = exc[t];
  out[e.x] = e.y;
}

// Events of one sub-batch: its upload, its kernels, and its values' download (timing and order).
struct BatchEvents {
  cudaEvent_t up, kernels, checked, down0, down1;
};

struct DecLane {
  cudaStream_t stream = nullptr;
  cudaEvent_t e0, e3, pieces0;
  DevBuf frames, src, words, flags, scanW, scanA, status, out, exc, tmp;
  HostBuf staging, piece[2];
  cudaEvent_t pieceDone[2];
  std::vector<BatchEvents> batch;
  void init() {
    if (stream) return;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    for (cudaEvent_t* e : {&e0, &e3, &pieces0, &pieceDone[0], &pieceDone[1]}) {
      check(cudaEventCreate(e), "cudaEventCreate");
    }
  }
  void events(size_t n) {
    while (batch.size() < n) {
      BatchEvents b;
      for (cudaEvent_t* e : {&b.up, &b.kernels, &b.checked, &b.down0, &b.down1}) check(cudaEventCreate(e), "cudaEventCreate");
      batch.push_back(b);
    }
  }
};

DecLane g_dec;
constexpr uint64_t PIECE = 64ull << 20;

// A run of values from the device output to host memory.
struct Span {
  uint64_t devAt;
  uint8_t* host;
  uint64_t len;
};

// Spans next to each other on both sides made one (frames decoded into one buffer go in one copy).
void addSpan(std::vector<Span>& v, Span s) {
  if (!v.empty() && v.back().devAt + v.back().len == s.devAt && v.back().host + v.back().len == s.host) {
    v.back().len += s.len;
  } else {
    v.push_back(s);
  }
}

} // namespace

extern "C" int32_t kvr_fast_decode(const double* frames, uint32_t nf, const uint32_t* exc, uint64_t nExc,
                                   uint64_t subBatchBytes, uint32_t* status, double* timing, uint8_t* err,
                                   uint32_t errCap) {
  try {
    enter();
    double t0 = nowMs();
    DecLane& L = g_dec;
    L.init();
    if (nf == 0 || subBatchBytes == 0) throw CudaError("a decode call of no frames or sub-batches of 0 bytes");
    std::vector<DecFrame> F(nf);
    std::vector<const uint8_t*> bodies(nf);
    std::vector<uint8_t*> outs(nf);
    std::vector<uint32_t> digests(nf);
    std::vector<bool> direct(nf);
    uint64_t srcBytes = 0, values = 0;
    uint32_t blocks = 0;
    for (uint32_t f = 0; f < nf; f++) {
      const double* d = frames + (uint64_t)f * DI_WORDS;
      DecFrame& fr = F[f];
      uint64_t len = (uint64_t)d[DI_LEN];
      fr.rows = (uint32_t)d[DI_ROWS], fr.cols = (uint32_t)d[DI_COLS];
      if (len % 4 || fr.rows == 0 || fr.cols == 0 || d[DI_OUT] == 0) throw CudaError("bad frame table");
      bodies[f] = reinterpret_cast<const uint8_t*>((uintptr_t)d[DI_PTR]);
      outs[f] = reinterpret_cast<uint8_t*>((uintptr_t)d[DI_OUT]);
      digests[f] = (uint32_t)d[DI_DIGEST], direct[f] = d[DI_DIRECT] != 0;
      fr.srcWord = (uint32_t)(srcBytes / 4), fr.srcWords = (uint32_t)(len / 4);
      fr.outOff = values;
      fr.blockStart = blocks;
      fr.blocks = (fr.rows + BLOCK - 1) / BLOCK * fr.cols;
      fr.step = (float)d[DI_STEP];
      fr.delta = (uint32_t)d[DI_DELTA], fr.outlierBits = (uint32_t)d[DI_OUTLIER_BITS];
      fr.outlierWord = fr.srcWord + (uint32_t)d[DI_OUTLIERS_AT] / 4;
      fr.payloadWord = fr.srcWord + (uint32_t)d[DI_PAYLOAD_AT] / 4;
      fr.outliers = (uint32_t)d[DI_OUTLIERS], fr.payloadWords = (uint32_t)d[DI_PAYLOAD_WORDS];
      srcBytes += len, values += (uint64_t)fr.rows * fr.cols, blocks += fr.blocks;
    }
    // output indices (exceptions) and body words are u32
    if (srcBytes >= (1ull << 34) || values >= (1ull << 32)) throw CudaError("a decode call past 2^32 values or words");
    // sub-batches of about subBatchBytes of values: frames [cut[k], cut[k + 1]), blocks from
    // blockAt[k]; each frame's blockStart becomes relative to its sub-batch's
    std::vector<uint32_t> cut{0}, blockAt;
    for (uint64_t f = 0, acc = 0; f < nf; f++) {
      uint64_t bytes = 4ull * F[f].rows * F[f].cols;
      if (acc > 0 && acc + bytes > subBatchBytes) cut.push_back((uint32_t)f), acc = 0;
      acc += bytes;
    }
    cut.push_back(nf);
    size_t nBatches = cut.size() - 1;
    for (size_t k = 0; k < nBatches; k++) {
      uint32_t b0 = F[cut[k]].blockStart;
      blockAt.push_back(b0);
      for (uint32_t f = cut[k]; f < cut[k + 1]; f++) F[f].blockStart -= b0;
    }
    blockAt.push_back(blocks);
    // exceptions come ascending by index into the call's values: each sub-batch's are a range
    auto excBefore = [&](uint64_t value) {
      uint64_t lo = 0, hi = nExc;
      while (lo < hi) {
        uint64_t m = (lo + hi) / 2;
        if (exc[2 * m] < value) lo = m + 1; else hi = m;
      }
      return lo;
    };
    uint32_t nb = blocks;
    L.frames.need(nf * sizeof(DecFrame));
    L.src.need(srcBytes + 4);
    L.words.need(4ull * (nb + 1)), L.flags.need(4ull * (nb + 1));
    L.scanW.need(4ull * (nb + 1)), L.scanA.need(4ull * (nb + 1));
    L.status.need(4ull * nf);
    L.out.need(4 * values + 4);
    L.exc.need(8 * nExc + 8);
    size_t tmpBytes = 0;
    check(cub::DeviceScan::ExclusiveSum(nullptr, tmpBytes, L.words.as<uint32_t>(), L.scanW.as<uint32_t>(), nb + 1),
          "scan size");
    L.tmp.need(tmpBytes);
    L.events(nBatches);
    uint64_t frameAt = srcBytes, excAt = frameAt + nf * sizeof(DecFrame), statusAt = excAt + 8 * nExc;
    L.staging.need(statusAt + 4ull * nf);
    uint8_t* stage = L.staging.as<uint8_t>();
    uint32_t* hostStatus = reinterpret_cast<uint32_t*>(stage + statusAt);
    std::memcpy(stage + frameAt, F.data(), nf * sizeof(DecFrame));
    if (nExc) std::memcpy(stage + excAt, exc, 8 * nExc);
    cudaStream_t s = L.stream;
    check(cudaEventRecord(L.e0, s), "cudaEventRecord");
    check(cudaMemcpyAsync(L.frames.p, stage + frameAt, nf * sizeof(DecFrame), cudaMemcpyHostToDevice, s),
          "upload of the frames");
    if (nExc) check(cudaMemcpyAsync(L.exc.p, stage + excAt, 8 * nExc, cudaMemcpyHostToDevice, s), "upload of the exceptions");
    const uint32_t* src = L.src.as<uint32_t>();
    uint32_t T = 256;

    // Sub-batch k: its bodies into pinned staging and their crc32s (host threads; a body that is
    // not its digest is never decoded), up, its kernels, its checks down; while the bus brings
    // the values of sub-batch k - 1 and the kernels of k run, the host stages k + 1.
    auto enqueueBatch = [&](size_t k) {
      uint32_t f0 = cut[k], f1 = cut[k + 1], nfk = f1 - f0;
      uint32_t b0 = blockAt[k], nbk = blockAt[k + 1] - b0;
      parallelFor(nfk, [&](size_t i) {
        uint32_t f = f0 + (uint32_t)i;
        uint8_t* at = stage + 4ull * F[f].srcWord;
        size_t len = 4ull * F[f].srcWords;
        std::memcpy(at, bodies[f], len);
        hostStatus[f] = crc32(at, len) == digests[f] ? 0 : DIGEST;
      });
      uint64_t s0 = 4ull * F[f0].srcWord, s1 = f1 < nf ? 4ull * F[f1].srcWord : srcBytes;
      const BatchEvents& ev = L.batch[k];
      check(cudaMemcpyAsync(L.src.as<uint8_t>() + s0, stage + s0, s1 - s0, cudaMemcpyHostToDevice, s),
            "upload of the bodies");
      check(cudaMemcpyAsync(L.status.as<uint32_t>() + f0, hostStatus + f0, 4ull * nfk, cudaMemcpyHostToDevice, s),
            "upload of the digests' checks");
      check(cudaEventRecord(ev.up, s), "cudaEventRecord");
      const DecFrame* dF = L.frames.as<DecFrame>() + f0;
      uint32_t* st = L.status.as<uint32_t>() + f0;
      uint32_t *words = L.words.as<uint32_t>() + b0, *flags = L.flags.as<uint32_t>() + b0;
      uint32_t *scanW = L.scanW.as<uint32_t>() + b0, *scanA = L.scanA.as<uint32_t>() + b0;
      uint32_t G = (nbk + T - 1) / T, GF = (nfk + T - 1) / T;
      kWidths<<<G, T, 0, s>>>(dF, nfk, nbk, src, words, flags, st);
      size_t tb = L.tmp.bytes;
      check(cub::DeviceScan::ExclusiveSum(L.tmp.p, tb, words, scanW, nbk + 1, s), "scan of payload words");
      tb = L.tmp.bytes;
      check(cub::DeviceScan::ExclusiveSum(L.tmp.p, tb, flags, scanA, nbk + 1, s), "scan of outliers");
      kTotals<<<GF, T, 0, s>>>(dF, nfk, scanW, scanA, st);
      kBlocks<<<G, T, 0, s>>>(dF, nfk, nbk, src, scanW, scanA, st, L.out.as<float>());
      uint64_t e0 = excBefore(F[f0].outOff);
      uint64_t e1 = f1 < nf ? excBefore(F[f1].outOff) : nExc;
      if (e1 > e0) {
        kExc<<<(uint32_t)((e1 - e0 + T - 1) / T), T, 0, s>>>(L.exc.as<uint2>() + e0, e1 - e0, L.out.as<uint32_t>());
      }
      check(cudaGetLastError(), "kernel launch");
      check(cudaEventRecord(ev.kernels, s), "cudaEventRecord");
      check(cudaMemcpyAsync(hostStatus + f0, st, 4ull * nfk, cudaMemcpyDeviceToHost, s), "download of the checks");
      check(cudaEventRecord(ev.checked, s), "cudaEventRecord");
    };
    // Once sub-batch k's checks are back: only frames that passed go to their memory (the others'
    // stays as it was), by DMA into page-locked memory now, else later through pinned pieces.
    std::vector<Span> staged;
    uint64_t d2hBytes = 0, directBytes = 0;
    auto download = [&](size_t k) {
      const BatchEvents& ev = L.batch[k];
      check(cudaEventSynchronize(ev.checked), "decode");
      std::vector<Span> dma;
      for (uint32_t f = cut[k]; f < cut[k + 1]; f++) {
        status[f] = hostStatus[f];
        if (status[f] != 0) continue;
        Span sp{4 * F[f].outOff, outs[f], 4ull * F[f].rows * F[f].cols};
        addSpan(direct[f] ? dma : staged, sp);
      }
      check(cudaEventRecord(ev.down0, s), "cudaEventRecord");
      for (const Span& sp : dma) {
        check(cudaMemcpyAsync(sp.host, L.out.as<uint8_t>() + sp.devAt, sp.len, cudaMemcpyDeviceToHost, s),
              "download of the values");
        d2hBytes += sp.len, directBytes += sp.len;
      }
      check(cudaEventRecord(ev.down1, s), "cudaEventRecord");
    };
    for (size_t k = 0; k < nBatches; k++) {
      enqueueBatch(k);
      if (k > 0) download(k - 1);
    }
    download(nBatches - 1);

    // the rest in pieces through two pinned buffers: piece k + 1 on the bus while k is copied out
    std::vector<std::vector<CopyJob>> pieces;
    {
      uint64_t room = 0;
      for (const Span& sp : staged) {
        hugePages(sp.host, sp.len);
        for (uint64_t at = 0; at < sp.len;) {
          if (room == 0) pieces.emplace_back(), room = PIECE;
          uint64_t len = std::min(room, sp.len - at);
          // src: the device offset for now; the pinned address once the piece is enqueued
          pieces.back().push_back(CopyJob{sp.host + at, reinterpret_cast<const uint8_t*>(sp.devAt + at), len});
          at += len, room -= len, d2hBytes += len;
        }
      }
    }
    if (!staged.empty()) L.piece[0].need(PIECE), L.piece[1].need(PIECE);
    auto enqueuePiece = [&](size_t k) {
      uint8_t* buf = L.piece[k & 1].as<uint8_t>();
      for (CopyJob& j : pieces[k]) {
        uint64_t devAt = reinterpret_cast<uintptr_t>(j.src);
        check(cudaMemcpyAsync(buf, L.out.as<uint8_t>() + devAt, j.len, cudaMemcpyDeviceToHost, s),
              "download of the values");
        j.src = buf, buf += j.len;
      }
      check(cudaEventRecord(L.pieceDone[k & 1], s), "cudaEventRecord");
    };
    check(cudaEventRecord(L.pieces0, s), "cudaEventRecord");
    if (!pieces.empty()) enqueuePiece(0);
    for (size_t k = 0; k < pieces.size(); k++) {
      check(cudaEventSynchronize(L.pieceDone[k & 1]), "download of the values");
      if (k + 1 < pieces.size()) enqueuePiece(k + 1);
      parallelCopy(pieces[k]);
    }
    check(cudaEventRecord(L.e3, s), "cudaEventRecord");
    check(cudaEventSynchronize(L.e3), "decode");
    // event time per kind, summed over sub-batches (their copies and kernels take turns on one
    // stream: the upload of k follows the checks of k - 1 or the values of k - 2; its time
    // includes the wait for the host staging it, which only the first shows much of)
    double up = 0, kern = 0, down = elapsed(L.pieces0, L.e3);
    for (size_t k = 0; k < nBatches; k++) {
      const BatchEvents& ev = L.batch[k];
      up += elapsed(k == 0 ? L.e0 : k == 1 ? L.batch[0].checked : L.batch[k - 2].down1, ev.up);
      kern += elapsed(ev.up, ev.kernels);
      down += elapsed(ev.kernels, ev.checked) + elapsed(ev.down0, ev.down1);
    }
    timing[T_H2D_MS] = up, timing[T_KERNEL_MS] = kern, timing[T_D2H_MS] = down, timing[T_TOTAL_MS] = nowMs() - t0;
    timing[T_H2D_BYTES] = (double)srcBytes, timing[T_D2H_BYTES] = (double)d2hBytes;
    timing[T_BATCHES] = (double)nBatches, timing[T_DIRECT_BYTES] = (double)directBytes;
    return 0;
  } catch (const std::exception& e) {
    cudaStreamSynchronize(g_dec.stream); // nothing of this call may still write into the caller's memory
    cudaGetLastError();
    return fail(e, err, errCap);
  }
}
