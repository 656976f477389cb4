/**
 * Page-locked host memory for the CUDA codec, so that uploads are DMA instead of staged:
 * `HostRegistry` page-locks the caller's own buffers (`cudaHostRegister`; f32 values and f16
 * bits alike) the second time a call uses them, so a buffer that comes back (a pool's output, a
 * gather arena, KV encoded again) uploads at DMA speed from then on. Registration costs about as
 * much as one pageable copy, so a buffer used once (a request's fresh prefill output) is left
 * pageable rather than paid for twice and then held, and buffers under `minBytes` always are.
 *
 * A registered buffer is held (a strong reference) until the registry releases it. CUDA finds
 * a registration by address: had the buffer been collected first and its memory handed to a
 * new one, CUDA would copy the old pages (another request's KV) for the new buffer, silently.
 * So buffers are released here, least recently used first, once the registered bytes would
 * pass `maxBytes`, and only between library calls (`forCall`), never one a call in flight uses.
 * @module
 */
import { type CudaSymbols, errBuf, errText } from "./library.ts";

interface Registration {
  ptr: Deno.PointerValue;
  bytes: number;
}

/** Registrations of callers' buffers, least recently used first. */
export class HostRegistry {
  /** Live registrations in order of last use (a Map keeps insertion order; a use re-inserts). */
  #held = new Map<ArrayBufferLike, Registration>();
  /** Buffers whose registration failed: left pageable, not tried again. */
  #refused = new WeakSet<ArrayBufferLike>();
  /** Buffers an earlier call used (pageable then): the next call that uses one registers it. */
  #seen = new WeakSet<ArrayBufferLike>();
  registeredBytes = 0;
  failures = 0;
  lastError = "";

  constructor(readonly lib: CudaSymbols, readonly minBytes = 2 ** 20, readonly maxBytes = 4 * 2 ** 30) {}

  /**
   * Page-locks the buffers of one library call's `views` that an earlier call used too, where
   * they are large enough and room can be made by releasing buffers no view of this call is in;
   * `out[i]` says whether `views[i]`'s buffer is page-locked. With `now`, this call's buffers
   * qualify at once (outputs the caller keeps for reuse). Call it with nothing in flight on the
   * library.
   */
  forCall(views: ArrayBufferView[], now = false): boolean[] {
    const inCall = new Set(views.map((v) => v.buffer));
    const wanted = [...inCall].filter((b) =>
      !this.#held.has(b) && !this.#refused.has(b) && b.byteLength >= this.minBytes &&
      b.byteLength <= this.maxBytes && (now || this.#seen.has(b))
    );
    for (const b of inCall) this.#seen.add(b);
    const need = wanted.reduce((n, b) => n + b.byteLength, 0);
    for (const [buf, r] of this.#held) {
      if (this.registeredBytes + need <= this.maxBytes) break;
      if (!inCall.has(buf)) this.#release(buf, r);
    }
    for (const buf of wanted) {
      if (this.registeredBytes + buf.byteLength <= this.maxBytes) this.#register(buf);
    }
    for (const buf of inCall) { // used now: the last to be released
      const r = this.#held.get(buf);
      if (r) this.#held.delete(buf), this.#held.set(buf, r);
    }
    return views.map((v) => this.#held.has(v.buffer));
  }

  /** Releases every registration (for a caller done with the library, and for tests). */
  releaseAll(): void {
    for (const [buf, r] of this.#held) this.#release(buf, r);
  }

  /** How many buffers are held page-locked. */
  get heldBuffers(): number {
    return this.#held.size;
  }

  #register(buf: ArrayBufferLike): void {
    const ptr = Deno.UnsafePointer.of(new Uint8Array(buf));
    const err = errBuf();
    if (ptr === null || this.lib.kvr_cuda_host_register(ptr, BigInt(buf.byteLength), err, err.length) !== 0) {
      this.failures++;
      this.lastError = errText(err);
      this.#refused.add(buf);
      return;
    }
    this.#held.set(buf, { ptr, bytes: buf.byteLength });
    this.registeredBytes += buf.byteLength;
  }

  #release(buf: ArrayBufferLike, r: Registration): void {
    this.#held.delete(buf);
    this.lib.kvr_cuda_host_unregister(r.ptr);
    this.registeredBytes -= r.bytes;
  }
}
