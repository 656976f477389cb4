/**
 * Page-locked host memory for the CUDA codec, so that copies are DMA instead of staged:
 *
 * - `HostRegistry` page-locks the caller's own buffers (`cudaHostRegister`) the first time a
 *   frame of them goes up, and keeps the registration while the buffer lives (a
 *   `FinalizationRegistry` releases it after), so a request's KV, registered once, uploads
 *   at DMA speed on every later call. Registration costs about as much as one pageable copy,
 *   so buffers under `minBytes` are left pageable. The key is the `ArrayBuffer` itself, never
 *   its address: memory freed and mapped again at the same address is registered anew.
 * - `PinnedPool` hands out pinned arenas (`cudaHostAlloc`) for decoded values; each returned
 *   `ArrayBuffer` goes back to the pool when it is collected. Past `maxBytes` of arenas live at
 *   once it says no, and the caller uses ordinary memory.
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

interface Arena {
  ptr: Deno.PointerObject;
  bytes: number;
}

/** Pinned arenas for decoded values, reused once the arrays over them are collected. */
export class PinnedPool {
  #free: Arena[] = [];
  #gone: FinalizationRegistry<Arena>;
  liveBytes = 0;
  refused = 0;

  constructor(readonly lib: CudaSymbols, readonly maxBytes = 8 * 2 ** 30) {
    this.#gone = new FinalizationRegistry((a) => {
      this.liveBytes -= a.bytes;
      this.#free.push(a);
    });
  }

  /** An arena of at least `bytes` as an ArrayBuffer (and its address), or null past the cap. */
  take(bytes: number): { buffer: ArrayBuffer; ptr: Deno.PointerObject } | null {
    const size = 2 ** Math.max(20, Math.ceil(Math.log2(Math.max(bytes, 1))));
    const k = this.#free.findIndex((a) => a.bytes === size);
    if (k < 0 && this.liveBytes + size > this.maxBytes) {
      // free arenas of other sizes before refusing
      while (this.#free.length && this.liveBytes + size > this.maxBytes) {
        this.lib.kvr_cuda_host_free(this.#free.pop()!.ptr);
      }
    }
    let a: Arena | undefined;
    if (k >= 0) a = this.#free.splice(k, 1)[0];
    else {
      const held = this.#free.reduce((s, x) => s + x.bytes, 0);
      if (this.liveBytes + held + size > this.maxBytes) {
        this.refused++;
        return null;
      }
      const ptr = this.lib.kvr_cuda_host_alloc(BigInt(size));
      if (ptr === null) {
        this.refused++;
        return null;
      }
      a = { ptr, bytes: size };
    }
    const buffer = Deno.UnsafePointerView.getArrayBuffer(a.ptr, a.bytes);
    this.liveBytes += a.bytes;
    this.#gone.register(buffer, a);
    return { buffer, ptr: a.ptr };
  }
}
