// The library's device, and host memory the caller page-locks or borrows (C ABI in
// kvrelay_cuda.h). One device per process, chosen once by kvr_cuda_init (KVRELAY_CUDA_DEVICE), so
// that prefill's compression and decode can sit on different GPUs of one host.
#include "context.cuh"
#include "kvrelay_cuda.h"

namespace kvr {
static bool g_ready = false;
static int g_device = 0;
bool ready() { return g_ready; }
void enter() {
  if (!g_ready) throw CudaError("kvr_cuda_init has not succeeded");
  check(cudaSetDevice(g_device), "cudaSetDevice");
}
} // namespace kvr

using namespace kvr;

extern "C" int32_t kvr_cuda_init(int32_t device, uint8_t* err, uint32_t errCap) {
  try {
    if (g_ready) {
      if (device == g_device) return 0;
      throw CudaError("this process already uses CUDA device " + std::to_string(g_device));
    }
    int n = 0;
    check(cudaGetDeviceCount(&n), "cudaGetDeviceCount");
    if (n < 1) throw CudaError("no CUDA device");
    if (device < 0 || device >= n) {
      throw CudaError("CUDA device " + std::to_string(device) + " does not exist (" + std::to_string(n) +
                      " visible)");
    }
    check(cudaSetDevice(device), "cudaSetDevice");
    g_device = device;
    check(cudaFree(nullptr), "creating the CUDA context");
    g_ready = true;
    return 0;
  } catch (const std::exception& e) {
    return fail(e, err, errCap);
  }
}

extern "C" int32_t kvr_cuda_device_name(uint8_t* out, uint32_t cap) {
  cudaDeviceProp p;
  if (cudaGetDeviceProperties(&p, g_device) != cudaSuccess) return -1;
  std::snprintf(reinterpret_cast<char*>(out), cap, "%s (sm_%d%d, %.0f GiB, device %d)", p.name, p.major, p.minor,
                p.totalGlobalMem / 1073741824.0, g_device);
  return 0;
}

extern "C" int32_t kvr_cuda_host_register(void* ptr, uint64_t bytes, uint8_t* err, uint32_t errCap) {
  try {
    enter();
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
  if (!g_ready || cudaSetDevice(g_device) != cudaSuccess || cudaHostAlloc(&p, bytes, cudaHostAllocDefault) != cudaSuccess) {
    cudaGetLastError();
    return nullptr;
  }
  return p;
}

extern "C" void kvr_cuda_host_free(void* ptr) {
  if (ptr) cudaFreeHost(ptr);
}
