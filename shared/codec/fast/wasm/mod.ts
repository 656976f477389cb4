/**
 * Glue for the fast format's WebAssembly kernels (./fast_kernels.c, built into
 * ./fast_kernels_wasm.ts by infra/wasm/build.sh): instantiation on first use, the module's
 * memory (grown as frames need, never shrunk), copying a frame in and a body or the values out.
 * The kernels cover fp32 frames; ../encode.ts and ../decode.ts keep the JS loops as the reference
 * and as the fallback (fp16/bf16, values checked one by one, no WebAssembly, frames too large).
 *
 * Memory from the module's heap base, each region 16-byte aligned with 16 bytes of slack after
 * it (a chunk of 4 channels may read past the last one):
 * ```
 * encode: x f32[n] | z i32[32·blocks] | w1, w2, slot, widths u8[blocks] | order u32[2·blocks] | exc u32[n] | body
 * decode: body (+32) | slot i8[blocks] | big i32[blocks] | t i32[32·(cols+3)] | out f32[n]
 * ```
 * @module
 */
import { FAST_KERNELS_WASM } from "./fast_kernels_wasm.ts";
import { BLOCK, blockCount, HEADER_BYTES } from "../layout.ts";

interface Exports {
  memory: WebAssembly.Memory;
  __heap_base: WebAssembly.Global;
  results(): number;
  finite_range(x: number, n: number): void;
  choose_delta(x: number, rows: number, cols: number, inv: number): number;
  quantize_frame(
    x: number,
    z: number,
    rows: number,
    cols: number,
    inv: number,
    delta: number,
    finite: number,
    w1: number,
    w2: number,
    slot: number,
    exc: number,
  ): number;
  choose_widths(w1: number, w2: number, widths: number, rows: number, cols: number): void;
  pack_frame(
    xbits: number,
    z: number,
    rows: number,
    cols: number,
    widths: number,
    slot: number,
    outlierBits: number,
    exc: number,
    ne: number,
    body: number,
    outliersAt: number,
    payloadAt: number,
    excAt: number,
    order: number,
  ): void;
  check_widths(widths: number, rows: number, cols: number): number;
  read_outliers(
    ow: number,
    count: number,
    widths: number,
    rows: number,
    cols: number,
    bits: number,
    slot: number,
    big: number,
  ): number;
  decode_frame(
    words: number,
    widths: number,
    slot: number,
    big: number,
    rows: number,
    cols: number,
    delta: number,
    step: number,
    outlierBits: number,
    t: number,
    out: number,
  ): void;
}

/**
 * Most memory the kernels take (a module's memory never shrinks, so this is what the process
 * keeps after its largest frame); a frame needing more goes to the JS loops. Encoding takes
 * about 13 bytes per value plus the body, decoding about 5 plus the body.
 */
export const MAX_WASM_BYTES = 2 ** 30;
const PAGE = 65536;
const SLACK = 16;
const up16 = (n: number): number => Math.ceil(n / 16) * 16;

/** What pass 2 of the encoder kept: counts the body's layout follows from. */
export interface QuantizedFrame {
  delta: boolean;
  outliers: number;
  outlierBits: number;
  payloadWords: number;
  exceptions: number;
}

/** The fast format's kernels over one instance's memory. Not reentrant (nothing here yields). */
export class FastKernels {
  readonly #x: Exports;
  readonly #heap: number;
  #buf: ArrayBuffer | null = null;
  #u8 = new Uint8Array(0);
  #res = new Float64Array(0);
  // the frame loaded for encoding, or the body loaded for decoding
  #rows = 0;
  #cols = 0;
  #at: Record<string, number> = {};
  #end = 0;
  #finite = false;

  constructor(instance: WebAssembly.Instance) {
    this.#x = instance.exports as unknown as Exports;
    this.#heap = up16(this.#x.__heap_base.value as number);
  }

  /** Bytes of the module's memory now. */
  get memoryBytes(): number {
    return this.#x.memory.buffer.byteLength;
  }

  /** Grows the memory to hold `end` bytes; false past {@link MAX_WASM_BYTES}. */
  #reserve(end: number): boolean {
    if (end > MAX_WASM_BYTES) return false;
    const mem = this.#x.memory;
    const have = mem.buffer.byteLength;
    if (end > have) {
      try {
        mem.grow(Math.ceil((end - have) / PAGE));
      } catch {
        return false;
      }
    }
    const buf = mem.buffer as ArrayBuffer; // not shared: the module declares no shared memory
    if (this.#buf !== buf) {
      this.#buf = buf;
      this.#u8 = new Uint8Array(buf);
      this.#res = new Float64Array(buf, this.#x.results(), 4);
    }
    return true;
  }

  /** Lays out regions of the given sizes from the heap base; their offsets and the end. */
  #layout(sizes: Record<string, number>): number {
    let p = this.#heap;
    this.#at = {};
    for (const [name, bytes] of Object.entries(sizes)) {
      this.#at[name] = p;
      p = up16(p + bytes + SLACK);
    }
    return this.#end = p;
  }

  // --- encoder -------------------------------------------------------------------------------

  /**
   * Copies an fp32 frame in and gives its finite range (`lo > hi` when no value is finite);
   * null when it does not fit. The frame stays loaded for {@link quantize} and {@link pack}.
   */
  loadFrame(x: Float32Array, rows: number, cols: number): { lo: number; hi: number } | null {
    const n = x.length, { blocks } = blockCount(rows, cols);
    const end = this.#layout({
      x: 4 * n,
      z: 4 * BLOCK * blocks,
      w1: blocks,
      w2: blocks,
      slot: blocks,
      widths: blocks,
      order: 8 * blocks,
      exc: 4 * n,
    });
    if (!this.#reserve(end)) return null;
    this.#rows = rows, this.#cols = cols;
    new Float32Array(this.#buf!, this.#at.x, n).set(x);
    this.#x.finite_range(this.#at.x, n);
    this.#finite = this.#res[2] !== 0;
    return { lo: this.#res[0], hi: this.#res[1] };
  }

  /**
   * Whether delta beats none on a sample of the loaded frame's row groups. This and
   * {@link quantize} need `|x · inv| < 2^22` for every finite value of the frame.
   */
  chooseDelta(inv: number): boolean {
    return this.#x.choose_delta(this.#at.x, this.#rows, this.#cols, inv) !== 0;
  }

  /** Pass 2 over the loaded frame: residuals, widths, outliers and exceptions. */
  quantize(inv: number, delta: boolean): QuantizedFrame {
    const a = this.#at, x = this.#x, rows = this.#rows, cols = this.#cols;
    const exceptions = x.quantize_frame(
      a.x,
      a.z,
      rows,
      cols,
      inv,
      +delta,
      +this.#finite,
      a.w1,
      a.w2,
      a.slot,
      a.exc,
    );
    x.choose_widths(a.w1, a.w2, a.widths, rows, cols);
    const r = this.#res;
    return { delta, outliers: r[0], outlierBits: r[1], payloadWords: r[2], exceptions };
  }

  /**
   * Pass 3: the body of `total` bytes, sections at the given offsets, header left zero for the
   * caller; null when it does not fit.
   */
  pack(
    q: QuantizedFrame,
    total: number,
    outliersAt: number,
    payloadAt: number,
    excAt: number,
  ): Uint8Array | null {
    const a = this.#at, body = this.#end;
    if (!this.#reserve(body + total + SLACK)) return null;
    this.#x.pack_frame(
      a.x,
      a.z,
      this.#rows,
      this.#cols,
      a.widths,
      a.slot,
      q.outlierBits,
      a.exc,
      q.exceptions,
      body,
      outliersAt,
      payloadAt,
      excAt,
      a.order,
    );
    const out = this.#u8.slice(body, body + total);
    out.fill(0, 0, HEADER_BYTES);
    return out;
  }

  // --- decoder -------------------------------------------------------------------------------

  /**
   * Copies a body in for decoding `rows × cols` fp32 values; false when it does not fit. Only
   * the body's room is taken: {@link prepareDecode} takes the rest once the body's sections
   * check out, so a corrupt stream does not grow the memory for its claimed shape.
   */
  loadBody(body: Uint8Array, rows: number, cols: number): boolean {
    const n = rows * cols, { blocks } = blockCount(rows, cols);
    this.#layout({
      body: body.length + 32, // a full block's last 4 codes are read as 16 bytes
      slot: blocks,
      big: 4 * blocks,
      t: 4 * BLOCK * (cols + 3),
      out: 4 * n,
    });
    if (!this.#reserve(this.#at.slot)) return false;
    this.#rows = rows, this.#cols = cols;
    this.#u8.set(body, this.#at.body);
    this.#u8.fill(0, this.#at.body + body.length, this.#at.body + body.length + 32);
    return true;
  }

  /** Checks the loaded body's widths (at `widthsAt`): the first bad block or -1, the flagged
   * blocks and the payload words they need. */
  checkWidths(widthsAt: number): { bad: number; flagged: number; words: number } {
    const bad = this.#x.check_widths(this.#at.body + widthsAt, this.#rows, this.#cols);
    return { bad, flagged: this.#res[0], words: this.#res[1] };
  }

  /** Takes the room the loaded body's values need; false when it does not fit. */
  prepareDecode(): boolean {
    return this.#reserve(this.#end);
  }

  /** Reads the outliers apart: 0, 1 for an overrun, or 2 with the bad slot and its block's length. */
  readOutliers(
    widthsAt: number,
    outliersAt: number,
    words: number,
    bits: number,
  ): { error: 0 | 1 | 2; slot: number; len: number } {
    const a = this.#at;
    const error = this.#x.read_outliers(
      a.body + outliersAt,
      words,
      a.body + widthsAt,
      this.#rows,
      this.#cols,
      bits,
      a.slot,
      a.big,
    ) as 0 | 1 | 2;
    return { error, slot: this.#res[0], len: this.#res[1] };
  }

  /** The values of the loaded body's payload (at `payloadAt`), a fresh array. */
  decode(
    widthsAt: number,
    payloadAt: number,
    delta: boolean,
    step: number,
    outlierBits: number,
  ): Float32Array {
    const a = this.#at, n = this.#rows * this.#cols;
    this.#x.decode_frame(
      a.body + payloadAt,
      a.body + widthsAt,
      a.slot,
      a.big,
      this.#rows,
      this.#cols,
      delta ? 1 : 0,
      step,
      outlierBits,
      a.t,
      a.out,
    );
    return new Float32Array(this.#buf!, a.out, n).slice();
  }

  /** A view of `count` words of the loaded body from byte `at` (valid until the next call). */
  bodyWords(at: number, count: number): Uint32Array {
    return new Uint32Array(this.#buf!, this.#at.body + at, count);
  }
}

let kernels: FastKernels | null | undefined;
let enabled = true;

/** The kernels, instantiated on first use; null where WebAssembly or its SIMD is missing, or
 * while turned off by {@link setFastWasm}. */
export function fastKernels(): FastKernels | null {
  if (!enabled) return null;
  if (kernels === undefined) {
    try {
      const bytes = Uint8Array.from(atob(FAST_KERNELS_WASM), (c) => c.charCodeAt(0));
      kernels = new FastKernels(new WebAssembly.Instance(new WebAssembly.Module(bytes), {}));
    } catch {
      kernels = null;
    }
  }
  return kernels;
}

/** Turns the kernels off (`false`: the JS loops everywhere) or back on; gives the old setting. */
export function setFastWasm(on: boolean): boolean {
  const was = enabled;
  enabled = on;
  return was;
}
