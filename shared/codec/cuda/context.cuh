// What the encode and decode calls share: error reporting into the caller's buffer, device
// buffers that grow and are kept between calls, and timing by CUDA events.
#pragma once
#include <cuda_runtime.h>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

namespace kvr {

// A CUDA failure as an exception inside the library; each C entry point turns it into a code.
struct CudaError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw CudaError(std::string(what) + ": " + cudaGetErrorString(e));
}

inline int32_t fail(const std::exception& e, uint8_t* err, uint32_t cap) {
  if (err && cap) {
    std::snprintf(reinterpret_cast<char*>(err), cap, "%s", e.what());
  }
  return -1;
}

// A device allocation that only grows (the last size is kept for the next call).
struct DevBuf {
  void* p = nullptr;
  size_t bytes = 0;
  template <class T> T* as() const { return static_cast<T*>(p); }
  void need(size_t n) {
    if (n <= bytes) return;
    if (p) check(cudaFree(p), "cudaFree");
    p = nullptr, bytes = 0;
    size_t grown = n + n / 4;
    check(cudaMalloc(&p, grown), "cudaMalloc");
    bytes = grown;
  }
};

// Pinned host memory that only grows.
struct HostBuf {
  void* p = nullptr;
  size_t bytes = 0;
  template <class T> T* as() const { return static_cast<T*>(p); }
  void need(size_t n) {
    if (n <= bytes) return;
    if (p) check(cudaFreeHost(p), "cudaFreeHost");
    p = nullptr, bytes = 0;
    size_t grown = n + n / 4;
    check(cudaHostAlloc(&p, grown, cudaHostAllocDefault), "cudaHostAlloc");
    bytes = grown;
  }
};

// Milliseconds between two recorded events.
inline float elapsed(cudaEvent_t a, cudaEvent_t b) {
  float ms = 0;
  check(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
  return ms;
}

inline double nowMs() {
  using namespace std::chrono;
  return duration<double, std::milli>(steady_clock::now().time_since_epoch()).count();
}

// Whether kvr_cuda_init has succeeded (every call checks it).
bool ready();
// Makes the initialised device current on the calling thread (Deno runs nonblocking FFI calls on
// pool threads, whose current device would otherwise be device 0); throws when init has not run.
void enter();

} // namespace kvr
