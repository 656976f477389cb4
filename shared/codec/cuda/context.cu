// The library's device, and host memory the caller page-locks or borrows (C ABI in
// kvrelay_cuda.h). One device per process: device 0, initialised once.
#include "context.cuh"
#include "kvrelay_cuda.h"

namespace kvr {
static bool g_ready = false;
bool ready() { return g_ready; }
} // namespace kvr

using namespace kvr;

extern "C" int32_t kvr_cuda_init(uint8_t* err, uint32_t errCap) {
  try {
    if (g_ready) return 0;
    int n = 0;
    check(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
    if (n < 1) throw CudaError("no CUDA device");
    check(cudaSetDevice(0), "cudaSetDevice");
    check(cudaFree(nullptr), "creating the CUDA context");
    g_ready = true;
    return 0;
  } catch (const std::exception& e) {
    return fail(e, err, errCap);
  }
}

extern "C" int32_t kvr_cuda_device_name(uint8_t* out, uint32_t cap) {
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, 0) != cudaSuccess) return -1;
  std::snprintf(reinterpret_cast<char*>(out), cap, "%s (sm_%d%d, %.0f GiB)", p.name, p.major, p.minor,
                p.totalGlobalMem / 1073741824.0);
  return 0;
}

extern "C" int32_t kvr_cuda_host_register(void* ptr, uint64_t bytes, uint8_t* err, uint32_t errCap) {
  try {
    if (!g_ready) throw CudaError("kvr_cuda_init has not succeeded");
    cudaError_t e = cudaHostRegister(ptr, bytes, cudaHostRegisterDefault);
    if (e == cudaErrorHostMemoryAlreadyRegistered) {
      // a range registered for memory since freed and mapped again at the same address: renew it
      cudaGetLastError();
      check(cudaHostUnregister(ptr), "cudaHostUnregister of a stale registration");
      e = cudaHostRegister(ptr, bytes, cudaHostRegisterDefault);
    }
    check(e, "cudaHostRegister");
    return 0;
  } catch (const std::exception& e) {
    cudaGetLastError();
    return fail(e, err, errCap);
  }
}

extern "C" int32_t kvr_cuda_host_unregister(void* ptr) {
  cudaError_t e = cudaHostUnregister(ptr);
  if (e != cudaSuccess) cudaGetLastError();
  return e == cudaSuccess ? 0 : -1;
}

extern "C" void* kvr_cuda_host_alloc(uint64_t bytes) {
  void* p = nullptr;
  if (!g_ready || cudaHostAlloc(&p, bytes, cudaHostAllocDefault) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  return p;
}

extern "C" void kvr_cuda_host_free(void* ptr) {
  if (ptr) cudaFreeHost(ptr);
}
