/**
 * Page-locked host memory for the CUDA codec, so that uploads are DMA instead of staged:
 * `HostRegistry` page-locks the caller's own buffers (`cudaHostRegister`) the first time a
 *   frame of them goes up, and keeps the registration while the buffer lives (a
 *   `FinalizationRegistry` releases it after), so a request's KV, registered once, uploads
 *   at DMA speed on every later call. Registration costs about as much as one pageable copy,
 *   so buffers under `minBytes` are left pageable. The key is the `ArrayBuffer` itself, never
 *   its address: memory freed and mapped again at the same address is registered anew.
 * @module
 */
import { type CudaSymbols, errBuf, errText } from "./library.ts";

interface Registration {
  ptr: Deno.PointerValue;
  bytes: number;
}

/** Registrations of callers' buffers, one per live `ArrayBuffer`. */
export class HostRegistry {
  #live = new WeakMap<ArrayBufferLike, Registration | null>();
  /** Address → the registration now holding it (a stale finalizer must not release a newer one). */
  #byAddr = new Map<bigint, Registration>();
  #gone: FinalizationRegistry<Registration>;
  registeredBytes = 0;
  failures = 0;
  lastError = "";

  constructor(readonly lib: CudaSymbols, readonly minBytes = 2 ** 20, readonly maxBytes = 64 * 2 ** 30) {
    this.#gone = new FinalizationRegistry((r) => this.#release(r));
  }

  #release(r: Registration): void {
    const key = BigInt(Deno.UnsafePointer.value(r.ptr));
    if (this.#byAddr.get(key) !== r) return;
    this.#byAddr.delete(key);
    this.lib.kvr_cuda_host_unregister(r.ptr);
    this.registeredBytes -= r.bytes;
  }

  /** Page-locks `view`'s whole buffer if it is large enough and not yet done; false if it stays pageable. */
  ensure(view: ArrayBufferView): boolean {
    const buf = view.buffer;
    const had = this.#live.get(buf);
    if (had !== undefined) return had !== null;
    if (buf.byteLength < this.minBytes || this.registeredBytes + buf.byteLength > this.maxBytes) {
      return false; // not remembered: a later call may find room
    }
    const ptr = Deno.UnsafePointer.of(new Uint8Array(buf));
    const err = errBuf();
    if (ptr === null || this.lib.kvr_cuda_host_register(ptr, BigInt(buf.byteLength), err, err.length) !== 0) {
      this.failures++;
      this.lastError = errText(err);
      this.#live.set(buf, null);
      return false;
    }
    const r: Registration = { ptr, bytes: buf.byteLength };
    this.#live.set(buf, r);
    this.#byAddr.set(BigInt(Deno.UnsafePointer.value(ptr)), r);
    this.#gone.register(buf, r);
    this.registeredBytes += r.bytes;
    return true;
  }
}
