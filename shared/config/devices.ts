/**
 * The device choices a setting can name: their own file, so that the defaults and the loader
 * both read them without importing each other.
 * @module
 */

/**
 * Where a computation runs. `auto` takes a real GPU when WebGPU offers one and the CPU
 * otherwise (Mesa's software adapter does not count as a GPU for `auto`).
 */
export type DeviceChoice = "cpu" | "webgpu" | "auto";

/**
 * Where the hand-off's codecs run (KVRELAY_CODEC_DEVICE): a `DeviceChoice`, or `cuda` — the
 * fast codec on CUDA through the library of infra/cuda/build.sh (KVRELAY_CUDA_LIB), the other
 * codecs on the CPU; no library or device is a start-up error.
 */
export type CodecDeviceChoice = DeviceChoice | "cuda";
