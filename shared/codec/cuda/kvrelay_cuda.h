// The C ABI of the fast codec's CUDA backend (libkvrelay_cuda.so, built by infra/cuda/build.sh,
// loaded by ./library.ts through Deno.dlopen). Every call returns 0 or a negative code with a
// message in `err` (NUL-terminated, at most errCap bytes). Frame and result tables are arrays
// of doubles (host pointers included: they stay below 2^53), so JS fills them as Float64Array.
#pragma once
#include <cstdint>

extern "C" {

// Frame table of kvr_fast_encode, per frame (values row-major [rows, cols], of type EI_DTYPE).
enum EncIn { EI_PTR, EI_ROWS, EI_COLS, EI_BOUND, EI_MODE, EI_PRED, EI_RESERVE, EI_DTYPE, EI_WORDS };
// EI_DTYPE: f32 values, or f16 bit patterns that go up as they are (half the bytes) and are
// widened exactly to f32 on the device (f16_widen.h): their body is the f32 values' body.
enum EncDtype { ED_F32, ED_F16 };
// Results of kvr_fast_encode, per frame. Status 0: the body is at [BODY_AT, BODY_AT + BODY_LEN)
// of the call's output (a concatenation of its chunks); else why the CPU must encode the frame.
enum EncOut {
  EO_STATUS, EO_BODY_AT, EO_BODY_LEN, EO_EB, EO_STEP, EO_PRED, EO_OUTLIERS, EO_OUTLIER_BITS,
  EO_EXCEPTIONS, EO_PAYLOAD_WORDS, EO_WORDS
};
// Decode frame table, per frame (a body the host has checked but for its digest:
// ../webgpu/fast/decode.ts `parse`): the body, its layout, the crc32 its container promises
// (DI_DIGEST), where its values go (DI_OUT: host f32, rows × cols) and whether that memory is
// page-locked (DI_DIRECT 1: the values go there by DMA; 0: through pinned staging).
enum DecIn {
  DI_PTR, DI_LEN, DI_ROWS, DI_COLS, DI_STEP, DI_DELTA, DI_OUTLIER_BITS, DI_OUTLIERS_AT,
  DI_PAYLOAD_AT, DI_OUTLIERS, DI_PAYLOAD_WORDS, DI_DIGEST, DI_OUT, DI_DIRECT, DI_WORDS
};
// Timing of a call: milliseconds of host → device copies (of an encode, with the widening of its
// f16 frames), kernels, device → host copies (CUDA events, summed over sub-batches), the whole
// call (host clock), the bytes each way, and of the device → host bytes those that went by DMA
// straight into the caller's page-locked memory.
enum Timing {
  T_H2D_MS, T_KERNEL_MS, T_D2H_MS, T_TOTAL_MS, T_H2D_BYTES, T_D2H_BYTES, T_BATCHES, T_DIRECT_BYTES, T_WORDS
};

// The process's device (an index among the visible ones) and the library's state; 0 when it
// answers. A second call must name the same device.
int32_t kvr_cuda_init(int32_t device, uint8_t* err, uint32_t errCap);
// The device's name into `out`.
int32_t kvr_cuda_device_name(uint8_t* out, uint32_t cap);
// Page-locks a caller's host range so copies from it are DMA (cudaHostRegister), or releases it.
int32_t kvr_cuda_host_register(void* ptr, uint64_t bytes, uint8_t* err, uint32_t errCap);
int32_t kvr_cuda_host_unregister(void* ptr);
// Page-locked host memory of the library's own (cudaHostAlloc); null when it cannot.
void* kvr_cuda_host_alloc(uint64_t bytes);
void kvr_cuda_host_free(void* ptr);

// Encodes `nf` frames. The output is `chunks` pinned host ranges (`chunkTable`: pointer, bytes
// per chunk, at most `maxChunks`); EO_BODY_AT is an offset into their concatenation, and each
// body has EI_RESERVE free bytes before it for the container prefix. `subBatchBytes`: bytes of
// f32 values on the device per pipelined sub-batch (an f16 frame counts 4 a value there, its
// widened size; T_H2D_BYTES counts the 2 a value it uploads). The chunks stay valid until the
// next encode call.
int32_t kvr_fast_encode(const double* frames, uint32_t nf, double* results, double* chunkTable,
                        uint32_t maxChunks, uint32_t* chunks, uint64_t subBatchBytes,
                        double* timing, uint8_t* err, uint32_t errCap);

// Copies each body `[bodies[2k], bodies[2k] + bodies[2k+1])` of the last encode call's chunks
// (their concatenation, `bytes` long) to the same place in `dst` and gives its crc32 in `crcs`:
// host threads, a body each, the crc32 read from the copy while it is in cache. The bytes
// between bodies (room for the container prefixes) are left as they were in `dst`.
int32_t kvr_fast_encode_collect(uint8_t* dst, uint64_t bytes, const double* bodies, uint32_t n, uint32_t* crcs,
                                uint8_t* err, uint32_t errCap);

// Decodes `nf` bodies, each into its DI_OUT, with `nExc` exceptions as (index into the call's
// values, frames one after another, raw bits) pairs, ascending. Host threads copy the bodies
// into pinned staging and take their crc32s; a body whose crc32 is not DI_DIGEST never reaches
// the kernels. Sub-batches of about `subBatchBytes` of values are pipelined with the host: one
// stream runs, in order, the upload and kernels of sub-batch k and then the values of k - 1,
// while host threads stage k + 1 (on the device nothing overlaps: the values of one sub-batch
// never share the bus with the upload of another). Only frames that pass every check are
// written to their DI_OUT (a sub-batch's statuses come back before any of its values); the
// others' memory is left as it was. status per frame: 0 ok (written), 1 corrupt (widths, totals
// or an outlier slot disagree with the header), 2 a code past 2^23 (the CPU decodes), 4 the
// digest does not match (bits may combine).
int32_t kvr_fast_decode(const double* frames, uint32_t nf, const uint32_t* exc, uint64_t nExc,
                        uint64_t subBatchBytes, uint32_t* status, double* timing, uint8_t* err, uint32_t errCap);
}
