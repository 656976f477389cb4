// kvr_fast_encode: frames cut into sub-batches that run on two streams, so the upload of one
// overlaps the kernels and the download of the other. Per sub-batch: the values go up (DMA
// when the caller registered them): f32 frames straight into x, f16 frames as they are (2
// bytes a value) into a staging buffer that kWidenF16 widens into x; then every other kernel
// of fast_encode_kernels.cuh runs on x alone, the frames' sizes come back (a few words a
// frame), then exactly the compressed bytes come back into a pinned chunk of the library's.
// Nothing else crosses the bus.
#include <cub/device/device_scan.cuh>
#include <algorithm>
#include <vector>
#include "context.cuh"
#include "fast_encode_kernels.cuh"
#include "host_parallel.h"
#include "kvrelay_cuda.h"

using namespace kvr;

namespace {

struct HostFrame {
  const void* ptr; // f32 values or f16 bits (dtype)
  uint32_t rows, cols, blocks, mode, pred, reserve, dtype;
  uint64_t values;
  double bound;
};

// The buffers of one stream, kept between calls.
struct Lane {
  cudaStream_t stream = nullptr;
  cudaEvent_t e0, e1, e2, e3, e4;
  DevBuf frames, x, meta, sel, words, apart, scanW, scanA, ent, out, state, tmp;
  DevBuf x16; // the f16 frames' values as uploaded, widened into x
  HostBuf framesHost, stateHost;
  bool pending = false; // events of a sub-batch not yet added to the times
  void init() {
    if (stream) return;
    check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
    for (cudaEvent_t* e : {&e0, &e1, &e2, &e3, &e4}) check(cudaEventCreate(e), "cudaEventCreate");
  }
};

Lane g_lanes[2];
std::vector<HostBuf> g_chunks; // one per sub-batch of the last call
std::vector<uint64_t> g_chunkBytes; // their used bytes

// Milliseconds by step, summed over the sub-batches of a call.
struct Times {
  double h2d = 0, kernels = 0, d2h = 0;
};

// Adds the lane's last sub-batch's event times (waiting for its download).
void settle(Lane& L, Times& t) {
  if (!L.pending) return;
  check(cudaEventSynchronize(L.e4), "sub-batch download");
  t.h2d += elapsed(L.e0, L.e1), t.kernels += elapsed(L.e1, L.e2), t.d2h += elapsed(L.e3, L.e4);
  L.pending = false;
}

struct SubBatch {
  uint32_t first, count, blocks;
  uint64_t values;   // every frame's (x holds them as f32)
  uint64_t values16; // of those, the f16 frames' (staged at 2 bytes a value, then widened)
  // bytes that cross the bus: 4 a value of f32 frames, 2 of f16 frames
  uint64_t upBytes() const { return 4 * (values - values16) + 2 * values16; }
};

uint32_t sampleStride(uint32_t rows) {
  uint32_t groups = (rows + BLOCK - 1) / BLOCK;
  return groups / 8 > 1 ? groups / 8 : 1;
}

// Upload and every kernel of sub-batch `sb` on `L`, then the frames' state back to the host.
void enqueue(Lane& L, const std::vector<HostFrame>& fr, const SubBatch& sb, Times& times) {
  settle(L, times); // its buffers and events are this sub-batch's from here on
  uint32_t nf = sb.count, nb = sb.blocks;
  uint64_t cap = 12 * sb.values * 1ull + 12ull * nb + nf * 64ull;
  for (uint32_t k = 0; k < nf; k++) cap += fr[sb.first + k].reserve;
  L.frames.need(nf * sizeof(EncFrame));
  L.x.need(4 * sb.values);
  L.x16.need(2 * sb.values16);
  L.meta.need(8ull * nb);
  L.sel.need(4ull * nb);
  L.words.need(4ull * (nb + 1));
  L.apart.need(4ull * (nb + 1));
  L.scanW.need(4ull * (nb + 1));
  L.scanA.need(4ull * (nb + 1));
  L.ent.need(8ull * (nb + 1));
  L.out.need(cap);
  L.state.need(nf * sizeof(EncState) + sizeof(EncTotals));
  L.framesHost.need(nf * sizeof(EncFrame));
  L.stateHost.need(nf * sizeof(EncState) + sizeof(EncTotals));
  size_t tmpBytes = 0, t2 = 0;
  check(cub::DeviceScan::ExclusiveSum(nullptr, tmpBytes, L.words.as<uint32_t>(), L.scanW.as<uint32_t>(), nb + 1),
        "scan size");
  check(cub::DeviceScan::ExclusiveSum(nullptr, t2, L.apart.as<uint32_t>(), L.scanA.as<uint32_t>(), nb + 1),
        "scan size");
  L.tmp.need(tmpBytes > t2 ? tmpBytes : t2);

  EncFrame* F = L.framesHost.as<EncFrame>();
  uint64_t inOff = 0, stageOff = 0;
  uint32_t blockStart = 0;
  for (uint32_t k = 0; k < nf; k++) {
    const HostFrame& h = fr[sb.first + k];
    F[k] = EncFrame{inOff, stageOff, h.rows, h.cols, blockStart, h.blocks, sampleStride(h.rows), h.pred, h.mode,
                    h.reserve, h.bound};
    inOff += h.values, blockStart += h.blocks;
    if (h.dtype == ED_F16) stageOff += h.values;
  }
  cudaStream_t s = L.stream;
  check(cudaEventRecord(L.e0, s), "cudaEventRecord");
  for (uint32_t k = 0; k < nf; k++) {
    const HostFrame& h = fr[sb.first + k];
    if (h.dtype == ED_F16) {
      check(cudaMemcpyAsync(L.x16.as<uint16_t>() + F[k].stageOff, h.ptr, 2 * h.values, cudaMemcpyHostToDevice, s),
            "upload of the f16 values");
    } else {
      check(cudaMemcpyAsync(L.x.as<float>() + F[k].inOff, h.ptr, 4 * h.values, cudaMemcpyHostToDevice, s),
            "upload of the values");
    }
  }
  check(cudaMemcpyAsync(L.frames.p, F, nf * sizeof(EncFrame), cudaMemcpyHostToDevice, s), "upload of the frames");
  const EncFrame* dF = L.frames.as<EncFrame>();
  // after both uploads on this stream; before e1, so the timing's h2d includes the widening (what
  // fp16 input costs against f32 input shows in one figure) and the kernel time is x's alone
  if (sb.values16 > 0) {
    uint64_t blocks = (sb.values16 + 255) / 256;
    if (blocks > 0x7fffffffull) throw CudaError("sub-batch of too many f16 values");
    kWidenF16<<<(uint32_t)blocks, 256, 0, s>>>(dF, nf, sb.values16, L.x16.as<uint16_t>(), L.x.as<uint32_t>());
    check(cudaGetLastError(), "kernel launch (kWidenF16)");
  }
  check(cudaEventRecord(L.e1, s), "cudaEventRecord");

  EncState* st = L.state.as<EncState>();
  EncTotals* totals = reinterpret_cast<EncTotals*>(st + nf);
  const uint32_t* x = L.x.as<uint32_t>();
  uint32_t T = 256, G = (nb + T - 1) / T, GF = (nf + T - 1) / T;
  kInit<<<GF, T, 0, s>>>(st, nf, totals);
  kMinMax<<<G, T, 0, s>>>(dF, nf, nb, x, st);
  kParams<<<GF, T, 0, s>>>(dF, nf, st);
  kBlockStats<<<G, T, 0, s>>>(dF, nf, nb, x, st, L.meta.as<uint2>());
  kDecide0<<<G, T, 0, s>>>(dF, nf, nb, L.meta.as<uint2>(), st, L.sel.as<uint32_t>());
  kDecide1<<<G, T, 0, s>>>(dF, nf, nb, st, L.sel.as<uint32_t>(), L.words.as<uint32_t>(), L.apart.as<uint32_t>());
  size_t tb = L.tmp.bytes;
  check(cub::DeviceScan::ExclusiveSum(L.tmp.p, tb, L.words.as<uint32_t>(), L.scanW.as<uint32_t>(), nb + 1, s),
        "scan of payload words");
  tb = L.tmp.bytes;
  check(cub::DeviceScan::ExclusiveSum(L.tmp.p, tb, L.apart.as<uint32_t>(), L.scanA.as<uint32_t>(), nb + 1, s),
        "scan of outliers");
  kLayout<<<1, 1, 0, s>>>(dF, nf, L.scanW.as<uint32_t>(), L.scanA.as<uint32_t>(), st, totals, L.out.bytes);
  uint32_t* out = L.out.as<uint32_t>();
  auto ent = L.ent.as<unsigned long long>();
  kPack<<<G, T, 0, s>>>(dF, nf, nb, x, st, L.sel.as<uint32_t>(), L.scanW.as<uint32_t>(), L.scanA.as<uint32_t>(), out,
                        ent);
  uint32_t maxOutWords = nb + nb / 8 + nf + 1; // 36 bits an outlier at most, one per block
  kOutlierWords<<<(maxOutWords + T - 1) / T, T, 0, s>>>(st, nf, totals, ent, out);
  kExceptions<<<nf, 256, 0, s>>>(dF, st, x, out);
  kHeader<<<GF, T, 0, s>>>(dF, nf, st, out);
  check(cudaGetLastError(), "kernel launch");
  check(cudaEventRecord(L.e2, s), "cudaEventRecord");
  check(cudaMemcpyAsync(L.stateHost.p, L.state.p, nf * sizeof(EncState) + sizeof(EncTotals),
                        cudaMemcpyDeviceToHost, s),
        "download of the frame state");
  check(cudaEventRecord(L.e3, s), "cudaEventRecord");
}

// Once sub-batch `k`'s state is back: its results, and the download of its bytes into chunk k.
uint64_t finish(Lane& L, const SubBatch& sb, uint32_t k, uint64_t chunkBase, double* results) {
  check(cudaEventSynchronize(L.e3), "sub-batch");
  const EncState* st = L.stateHost.as<EncState>();
  const EncTotals* totals = reinterpret_cast<const EncTotals*>(st + sb.count);
  uint64_t bytes = (totals->bytes + 3ull) & ~3ull;
  if (g_chunks.size() <= k) g_chunks.resize(k + 1);
  g_chunks[k].need(bytes > 0 ? bytes : 4);
  if (bytes) {
    check(cudaMemcpyAsync(g_chunks[k].p, L.out.p, bytes, cudaMemcpyDeviceToHost, L.stream), "download of the bytes");
  }
  check(cudaEventRecord(L.e4, L.stream), "cudaEventRecord");
  L.pending = true;
  for (uint32_t j = 0; j < sb.count; j++) {
    const EncState& s = st[j];
    double* r = results + (uint64_t)(sb.first + j) * EO_WORDS;
    r[EO_STATUS] = s.status;
    if (s.status != 0) continue;
    r[EO_BODY_AT] = (double)(chunkBase + s.bodyAt);
    r[EO_BODY_LEN] = s.bodyLen;
    r[EO_EB] = s.eb;
    r[EO_STEP] = s.step;
    r[EO_PRED] = s.predictor;
    r[EO_OUTLIERS] = s.outliers;
    r[EO_OUTLIER_BITS] = s.outlierBits;
    r[EO_EXCEPTIONS] = s.exceptions;
    r[EO_PAYLOAD_WORDS] = s.payloadWords;
  }
  return bytes;
}

} // namespace

extern "C" int32_t kvr_fast_encode(const double* frames, uint32_t nf, double* results, double* chunkTable,
                                   uint32_t maxChunks, uint32_t* chunks, uint64_t subBatchBytes, double* timing,
                                   uint8_t* err, uint32_t errCap) {
  try {
    enter();
    double t0 = nowMs();
    std::vector<HostFrame> fr(nf);
    for (uint32_t f = 0; f < nf; f++) {
      const double* d = frames + (uint64_t)f * EI_WORDS;
      HostFrame& h = fr[f];
      h.ptr = reinterpret_cast<const void*>((uintptr_t)d[EI_PTR]);
      h.rows = (uint32_t)d[EI_ROWS], h.cols = (uint32_t)d[EI_COLS];
      h.values = (uint64_t)h.rows * h.cols;
      h.blocks = (h.rows + BLOCK - 1) / BLOCK * h.cols;
      h.bound = d[EI_BOUND], h.mode = (uint32_t)d[EI_MODE], h.pred = (uint32_t)d[EI_PRED];
      h.reserve = (uint32_t)d[EI_RESERVE], h.dtype = (uint32_t)d[EI_DTYPE];
      if (h.rows == 0 || h.cols == 0 || h.pred > PRED_AUTO || h.mode > 1 || h.dtype > ED_F16) {
        throw CudaError("bad frame table");
      }
    }
    std::vector<SubBatch> cut;
    for (uint32_t f = 0; f < nf; f++) {
      uint64_t v = fr[f].values;
      // sized by x, the f32 values on the device, whatever went up
      if (cut.empty() || 4 * (cut.back().values + v) > subBatchBytes) cut.push_back(SubBatch{f, 0, 0, 0, 0});
      SubBatch& b = cut.back();
      b.count++, b.blocks += fr[f].blocks, b.values += v;
      if (fr[f].dtype == ED_F16) b.values16 += v;
    }
    if (cut.size() > maxChunks) throw CudaError("more sub-batches than chunk table entries");
    for (Lane& L : g_lanes) L.init();
    uint64_t base = 0;
    double up = 0, down = 0;
    Times times;
    for (uint32_t k = 0; k <= cut.size(); k++) {
      if (k < cut.size()) enqueue(g_lanes[k & 1], fr, cut[k], times);
      if (k == 0) continue;
      Lane& L = g_lanes[(k - 1) & 1];
      uint64_t bytes = finish(L, cut[k - 1], k - 1, base, results);
      chunkTable[2 * (k - 1)] = (double)(uintptr_t)g_chunks[k - 1].p;
      chunkTable[2 * (k - 1) + 1] = (double)bytes;
      base += bytes;
      down += bytes;
      up += (double)cut[k - 1].upBytes();
    }
    for (Lane& L : g_lanes) settle(L, times);
    *chunks = (uint32_t)cut.size();
    g_chunkBytes.assign(cut.size(), 0);
    for (uint32_t k = 0; k < cut.size(); k++) g_chunkBytes[k] = (uint64_t)chunkTable[2 * k + 1];
    timing[T_H2D_MS] = times.h2d, timing[T_KERNEL_MS] = times.kernels, timing[T_D2H_MS] = times.d2h;
    timing[T_TOTAL_MS] = nowMs() - t0;
    timing[T_H2D_BYTES] = up, timing[T_D2H_BYTES] = down, timing[T_BATCHES] = (double)cut.size();
    return 0;
  } catch (const std::exception& e) {
    // nothing of this call may still read the caller's frames, nor its times reach the next call
    for (Lane& L : g_lanes) {
      if (L.stream) cudaStreamSynchronize(L.stream);
      L.pending = false;
    }
    cudaGetLastError();
    return fail(e, err, errCap);
  }
}

extern "C" int32_t kvr_fast_encode_collect(uint8_t* dst, uint64_t bytes, const double* bodies, uint32_t n,
                                           uint32_t* crcs, uint8_t* err, uint32_t errCap) {
  try {
    uint64_t total = 0;
    for (uint64_t b : g_chunkBytes) total += b;
    if (total != bytes) throw CudaError("collect: the destination is not the last encode's size");
    hugePages(dst, bytes);
    // where each chunk starts in the concatenation
    std::vector<uint64_t> starts{0};
    for (uint64_t b : g_chunkBytes) starts.push_back(starts.back() + b);
    for (uint32_t k = 0; k < n; k++) {
      if (bodies[2 * k] + bodies[2 * k + 1] > (double)bytes) throw CudaError("collect: a body past the output");
    }
    // one pass over each body: copied (across chunks if it spans them), then its crc32 from the copy
    parallelFor(n, [&](size_t k) {
      uint64_t at = (uint64_t)bodies[2 * k], end = at + (uint64_t)bodies[2 * k + 1];
      size_t c = std::upper_bound(starts.begin(), starts.end(), at) - starts.begin() - 1;
      for (uint64_t p = at; p < end; c++) {
        uint64_t upto = std::min(end, starts[c + 1]);
        std::memcpy(dst + p, g_chunks[c].as<uint8_t>() + (p - starts[c]), upto - p);
        p = upto;
      }
      crcs[k] = crc32(dst + at, end - at);
    });
    return 0;
  } catch (const std::exception& e) {
    return fail(e, err, errCap);
  }
}
