// The fast encoder's kernels, one thread per block of a sub-batch (a run of frames whose blocks
// lie one after another, block order (g, c) inside a frame). Each makes, for its block, the
// decision the CPU encoder (../fast/encode.ts, ../fast/kernels.ts) makes, in the same integer,
// fp32 and (for the frame's step) double arithmetic, so streams are byte for byte the CPU's:
//
// - kWidenF16: the f16 frames' values from their staging buffer into x as f32 bits (exactly
//   shared/dtype `f16Table32`: f16_widen.h), so every kernel below reads f32 alone.
// - kMinMax: finite min and max per frame as ordered keys (integer compares only).
// - kParams: the bound, fp32 step and inverse from the range (`quantStep`'s fast branch), or why
//   the CPU must encode the frame.
// - kBlockStats: residuals under both predictors, each block's width, its width without its one
//   largest code and that code's slot; the predictor sample (`choosePredictor`); exceptions.
// - kDecide0 / kDecide1: the predictor, then the two-pass outlier decision; payload words and
//   outlier flag per block (then scanned with cub into offsets and ranks).
// - kLayout: each frame's body size and place (one thread: a few hundred frames).
// - kPack: widths bytes, codes at their width (LSB first) at the scanned word offset, outlier
//   entries at the scanned rank; kOutlierWords gathers the outlier bit stream word by word.
// - kExceptions: indices (ascending) and raw bits, one CUDA block per frame that has any.
// - kHeader: the body's 44-byte header.
#pragma once
#include "f16_widen.h"
#include "fast_format.cuh"

namespace kvr {

constexpr uint32_t PRED_NONE = 0, PRED_DELTA = 1, PRED_AUTO = 2;
// kParams' verdicts besides 0 (the GPU encodes); the host maps them to the CPU encoder.
constexpr uint32_t ST_BOUND_NOT_FINITE = 1, ST_BOUND_ZERO = 2, ST_CHECK_EACH = 3, ST_STEP = 4,
                   ST_CAPACITY = 5;

// One frame of a sub-batch (host-filled).
struct EncFrame {
  uint64_t inOff;    // first value in the sub-batch's input (x)
  uint64_t stageOff; // f16 frames: first value in the sub-batch's f16 staging; f32 frames: an
                     // empty range there (kWidenF16 finds frames by it)
  uint32_t rows, cols, blockStart, blocks;
  uint32_t stride;  // `choosePredictor`'s sampling stride over row groups
  uint32_t pred;    // PRED_*
  uint32_t mode;    // 0 abs, 1 rel
  uint32_t reserve; // free bytes before the body (the container prefix)
  double bound;     // the error bound as asked
};

// One frame's state on the device, read back after the sub-batch.
struct EncState {
  uint32_t minKey, maxKey, noneBits, deltaBits, wo0, outlierBits, exceptions, predictor;
  uint32_t status, payloadWords, outliers, outlierWords, bodyAt, bodyLen, outWordStart, rankBase;
  uint32_t outlierWord, payloadWord, excWord, pad;
  float step, inv;
  double eb;
};

// Sub-batch totals: output bytes, outlier words.
struct EncTotals {
  uint32_t bytes, outWords, pad0, pad1;
};

struct Geo {
  uint32_t cols, b, g, c, r0, len;
};

__device__ inline Geo geo(const EncFrame& f, uint32_t B) {
  Geo G;
  G.cols = f.cols;
  G.b = B - f.blockStart;
  G.g = G.b / f.cols;
  G.c = G.b - G.g * f.cols;
  G.r0 = G.g * BLOCK;
  G.len = min(BLOCK, f.rows - G.r0);
  return G;
}

__global__ void kWidenF16(const EncFrame* F, uint32_t nf, uint64_t n, const uint16_t* x16, uint32_t* x);
__global__ void kInit(EncState* st, uint32_t nf, EncTotals* totals);
__global__ void kMinMax(const EncFrame* F, uint32_t nf, uint32_t nb, const uint32_t* x, EncState* st);
__global__ void kParams(const EncFrame* F, uint32_t nf, EncState* st);
__global__ void kBlockStats(const EncFrame* F, uint32_t nf, uint32_t nb, const uint32_t* x, EncState* st,
                            uint2* meta);
__global__ void kDecide0(const EncFrame* F, uint32_t nf, uint32_t nb, const uint2* meta, EncState* st,
                         uint32_t* sel);
__global__ void kDecide1(const EncFrame* F, uint32_t nf, uint32_t nb, EncState* st, uint32_t* sel,
                         uint32_t* words, uint32_t* apart);
__global__ void kLayout(const EncFrame* F, uint32_t nf, const uint32_t* scanW, const uint32_t* scanA,
                        EncState* st, EncTotals* totals, uint64_t cap);
__global__ void kPack(const EncFrame* F, uint32_t nf, uint32_t nb, const uint32_t* x, const EncState* st,
                      const uint32_t* sel, const uint32_t* scanW, const uint32_t* scanA, uint32_t* out,
                      unsigned long long* ent);
__global__ void kOutlierWords(const EncState* st, uint32_t nf, const EncTotals* totals,
                              const unsigned long long* ent, uint32_t* out);
__global__ void kExceptions(const EncFrame* F, const EncState* st, const uint32_t* x, uint32_t* out);
__global__ void kHeader(const EncFrame* F, uint32_t nf, const EncState* st, uint32_t* out);

} // namespace kvr
