/**
 * A pool of codec workers (./codec_worker.ts) behind the hand-off's interfaces: as a
 * `FrameEncoder` it spreads a call's frames over the workers by size, so a layer group is
 * encoded on every core at once; as a `FrameDecoder` it does the same with a bundle's streams.
 * Frames are copied out of the prefill output into buffers of their own, which are then
 * transferred (a view would clone the whole layer). The same codec, the same bytes: the pool
 * changes where the work runs, never what it gives.
 * @module
 */
import { registeredCoefficientSets } from "../../codec/predict/coefficients.ts";
import type { EncodeOptions, Tensor } from "../../codec/mod.ts";
import type { FrameEncoder, FrameInput } from "../compress_stage.ts";
import type { FrameDecoder } from "../decode_stage.ts";

interface Pending {
  resolve(v: unknown): void;
  reject(e: unknown): void;
}

/** Rebuilds a worker's error as the class the codec threw, so callers tell bad options apart. */
function rebuild(e: { name: string; message: string }): Error {
  const err = e.name === "RangeError"
    ? new RangeError(e.message)
    : e.name === "TypeError"
    ? new TypeError(e.message)
    : new Error(e.message);
  if (err.name !== e.name) err.name = e.name;
  return err;
}

export class CodecPool {
  readonly size: number;
  #workers: Worker[] = [];
  #pending = new Map<number, Pending>();
  #next = 1;

  constructor(size: number) {
    this.size = Math.max(1, Math.floor(size));
    for (let i = 0; i < this.size; i++) {
      const w = new Worker(new URL("./codec_worker.ts", import.meta.url).href, { type: "module" });
      w.onmessage = (e) => {
        const p = this.#pending.get(e.data.id);
        if (!p) return;
        this.#pending.delete(e.data.id);
        if (e.data.error) p.reject(rebuild(e.data.error));
        else p.resolve(e.data);
      };
      w.onerror = (e) => {
        e.preventDefault();
        for (const [id, p] of this.#pending) {
          (this.#pending.delete(id), p.reject(new Error(`codec worker failed: ${e.message}`)));
        }
      };
      this.#workers.push(w);
    }
  }

  #call<T>(worker: number, msg: Record<string, unknown>, transfer: ArrayBuffer[]): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#workers[worker].postMessage({ ...msg, id }, transfer);
    });
  }

  /** Splits item indices over the workers, largest first onto the least loaded. */
  #split(sizes: number[]): number[][] {
    const parts: number[][] = Array.from({ length: this.size }, () => []);
    const load = new Array(this.size).fill(0);
    const order = sizes.map((_, i) => i).sort((a, b) => sizes[b] - sizes[a]);
    for (const i of order) {
      let w = 0;
      for (let j = 1; j < this.size; j++) if (load[j] < load[w]) w = j;
      parts[w].push(i);
      load[w] += sizes[i];
    }
    return parts;
  }

  async encode(frames: FrameInput[], opts: EncodeOptions[]): Promise<Uint8Array[]> {
    const out = new Array<Uint8Array>(frames.length);
    const parts = this.#split(frames.map((f) => f.data.length));
    await Promise.all(parts.map(async (idx, w) => {
      if (!idx.length) return;
      const copies = idx.map((i) => ({
        data: frames[i].data.slice(),
        rows: frames[i].rows,
        cols: frames[i].cols,
      }));
      const r = await this.#call<{ bytes: Uint8Array[] }>(
        w,
        { op: "encode", frames: copies, opts: idx.map((i) => opts[i]) },
        copies.map((c) => c.data.buffer),
      );
      idx.forEach((i, k) => (out[i] = r.bytes[k]));
    }));
    return out;
  }

  async decode(streams: Uint8Array[], maxElements: number): Promise<Tensor[]> {
    const out = new Array<Tensor>(streams.length);
    const parts = this.#split(streams.map((s) => s.length));
    await Promise.all(parts.map(async (idx, w) => {
      if (!idx.length) return;
      const copies = idx.map((i) => streams[i].slice());
      const r = await this.#call<
        { values: (Float32Array | Uint16Array)[]; shapes: number[][]; dtypes: string[] }
      >(
        w,
        // the worker's decoder holds the coefficient sets this thread holds (cross-channel streams)
        { op: "decode", streams: copies, maxElements, coefficients: coefficientSetsForWorkers() },
        copies.map((c) => c.buffer),
      );
      idx.forEach((i, k) =>
        out[i] = { dtype: r.dtypes[k] as Tensor["dtype"], shape: r.shapes[k], data: r.values[k] } as Tensor
      );
    }));
    return out;
  }

  /** The pool as the hand-off's frame encoder, `layersPerCall` layers at a time. */
  frameEncoder(layersPerCall: number): FrameEncoder {
    return {
      device: `cpu×${this.size}`,
      layersPerCall,
      encodeFrames: (frames, opts) => this.encode(frames, opts),
    };
  }

  /** The pool as decode's frame decoder. */
  frameDecoder(): FrameDecoder {
    return (streams, limits) => this.decode(streams, limits.maxElements);
  }

  close(): void {
    for (const w of this.#workers) w.terminate();
    this.#workers = [];
    for (const [, p] of this.#pending) p.reject(new Error("codec pool closed"));
    this.#pending.clear();
  }
}

/** The registered coefficient sets as `{ hash, bytes }` for a decode message. */
function coefficientSetsForWorkers(): { hash: string; bytes: Uint8Array }[] {
  return registeredCoefficientSets().map((c) => ({ hash: c.hash, bytes: c.bytes }));
}
