/**
 * The fast codec's hold on a WebGPU device: its kernels compiled once, and `Run`, what one
 * batch holds while it runs — storage buffers and uniforms (released together), one compute
 * pass per submission (timed with timestamp queries when asked and offered, else from submit
 * to done), and read-backs through one staging buffer per submission.
 * @module
 */
import * as D from "./decode_kernels.ts";
import * as E from "./encode_kernels.ts";
import { SCAN_ADD, SCAN_SPANS, type ScanHost } from "./scan.ts";

const SOURCES = {
  minmax: E.MINMAX,
  blockStats: E.BLOCK_STATS,
  decide0: E.DECIDE0,
  decide1: E.DECIDE1,
  frameTotals: E.FRAME_TOTALS,
  pack: E.PACK,
  outlierWords: E.OUTLIER_WORDS,
  excRows: E.EXC_ROWS,
  excWrite: E.EXC_WRITE,
  scanSpans: SCAN_SPANS,
  scanAdd: SCAN_ADD,
  decWidths: D.DEC_WIDTHS,
  decTotals: D.DEC_TOTALS,
  decBlocks: D.DEC_BLOCKS,
  decExc: D.DEC_EXC,
} as const;

/** Kernel names (entry point `main` in each source). */
export type FastKernel = keyof typeof SOURCES;

// read when used, so that the module loads in a runtime without WebGPU (tests then skip)
const usage = () => GPUBufferUsage;

/** GPU time of a batch: compute passes by timestamp queries, or submit → done wall time. */
export interface FastTiming {
  gpuMs: number;
  source: "timestamp" | "submit";
  /** Submissions that waited for the GPU (round trips). */
  submissions: number;
  /**
   * Host wall ms of the batch by phase (`up`: host copies into upload buffers; `gpu`: submit →
   * done; `map`: mapping and copying read-backs out; other names: host work between them).
   */
  phases: Record<string, number>;
}

/** A device with the fast codec's kernels. */
export class FastGpu {
  readonly device: GPUDevice;
  /** Largest storage binding and buffer, in bytes. */
  readonly maxBinding: number;
  readonly timestamps: boolean;
  #pipelines = new Map<FastKernel, GPUComputePipeline>();

  private constructor(device: GPUDevice) {
    this.device = device;
    this.maxBinding = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    this.timestamps = device.features.has("timestamp-query");
  }

  /** Compiles every kernel; WGSL errors surface here. */
  static async create(device: GPUDevice): Promise<FastGpu> {
    const g = new FastGpu(device);
    device.pushErrorScope("validation");
    await Promise.all((Object.entries(SOURCES) as [FastKernel, string][]).map(async ([name, code]) => {
      const module = device.createShaderModule({ code, label: `fast.${name}` });
      const p = await device.createComputePipelineAsync({
        layout: "auto",
        compute: { module, entryPoint: "main" },
        label: `fast.${name}`,
      });
      g.#pipelines.set(name, p);
    }));
    const err = await device.popErrorScope();
    if (err) throw new Error(`WebGPU fast codec kernels failed to compile: ${err.message}`);
    return g;
  }

  pipeline(k: FastKernel): GPUComputePipeline {
    return this.#pipelines.get(k)!;
  }
}

const MAX_PASSES = 16;

/** One batch on the device: its buffers, passes, timing and read-backs. */
export class Run implements ScanHost {
  readonly gpu: FastGpu;
  readonly #owned: GPUBuffer[] = [];
  #enc?: GPUCommandEncoder;
  #pass?: GPUComputePassEncoder;
  #query?: GPUQuerySet;
  #passes = 0;
  #wallMs = 0;
  #submissions = 0;
  #phases: Record<string, number> = {};
  #last = performance.now();
  #scoped = false;

  readonly #timed: boolean;

  constructor(gpu: FastGpu, timestamps: boolean) {
    this.gpu = gpu;
    this.#timed = timestamps;
    if (timestamps && gpu.timestamps) {
      this.#open();
      this.#query = gpu.device.createQuerySet({ type: "timestamp", count: 2 * MAX_PASSES });
    }
  }

  /**
   * Error scopes around each synchronous stretch of device calls (from the first call to the
   * submission that ends it): an out-of-memory or validation error would otherwise leave an
   * invalid buffer and a read-back of zeros. Stretches of batches in flight never interleave
   * (each ends before its batch waits), so the device's scope stack stays in order.
   */
  #open(): void {
    if (this.#scoped) return;
    this.gpu.device.pushErrorScope("out-of-memory");
    this.gpu.device.pushErrorScope("validation");
    this.#scoped = true;
  }

  #close(): Promise<void> {
    if (!this.#scoped) return Promise.resolve();
    this.#scoped = false;
    const validation = this.gpu.device.popErrorScope(), memory = this.gpu.device.popErrorScope();
    return Promise.all([validation, memory]).then(([v, m]) => {
      const e = v ?? m;
      if (e) throw new Error(`WebGPU error in a fast codec batch: ${e.message}`);
    });
  }

  /** Charges the host time since the previous phase to `name`. */
  phase(name: string): void {
    const now = performance.now();
    this.#phases[name] = (this.#phases[name] ?? 0) + now - this.#last;
    this.#last = now;
  }

  /** A storage buffer of at least `bytes` (4 at least, a multiple of 4), zeroed, released with the run. */
  buffer(bytes: number): GPUBuffer {
    this.#open();
    const b = this.gpu.device.createBuffer({
      size: Math.max(4, Math.ceil(bytes / 4) * 4),
      usage: usage().STORAGE | usage().COPY_DST | usage().COPY_SRC,
    });
    this.#owned.push(b);
    return b;
  }

  /** A storage buffer holding `data` (its length padded to 4 bytes). */
  upload(data: ArrayBufferView): GPUBuffer {
    const b = this.buffer(data.byteLength);
    this.write(b, 0, data);
    return b;
  }

  /** Writes `data` at byte `offset` (a multiple of 4; the data padded to 4 bytes). */
  write(b: GPUBuffer, offset: number, data: ArrayBufferView): void {
    const u8 = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    if (u8.byteLength === 0) return;
    this.#open();
    const whole = u8.byteLength & ~3;
    if (whole > 0) this.gpu.device.queue.writeBuffer(b, offset, u8, 0, whole);
    if (whole < u8.byteLength) {
      const tail = new Uint8Array(4);
      tail.set(u8.subarray(whole));
      this.gpu.device.queue.writeBuffer(b, offset + whole, tail);
    }
  }

  /**
   * When timing was asked for but the device has no timestamp queries, waits until the
   * uploads queued so far are done, so that submit → done times the kernels alone.
   */
  async settle(): Promise<void> {
    if (!this.#timed || this.#query) return;
    this.gpu.device.queue.submit([]);
    const checked = this.#close();
    await this.gpu.device.queue.onSubmittedWorkDone();
    await checked;
  }

  uniform(nBlocks: number, nFrames: number, nRows: number, nItems: number): GPUBuffer {
    this.#open();
    const b = this.gpu.device.createBuffer({ size: 16, usage: usage().UNIFORM | usage().COPY_DST });
    this.gpu.device.queue.writeBuffer(b, 0, new Uint32Array([nBlocks, nFrames, nRows, nItems]));
    this.#owned.push(b);
    return b;
  }

  /** Opens the command encoder and (unless `pass` is false) the compute pass of the next submission. */
  begin(pass = true): void {
    this.#open();
    this.#enc = this.gpu.device.createCommandEncoder();
    if (!pass) return;
    let timestampWrites: GPUComputePassTimestampWrites | undefined;
    if (this.#query && this.#passes < MAX_PASSES) {
      const i = this.#passes;
      timestampWrites = {
        querySet: this.#query,
        beginningOfPassWriteIndex: 2 * i,
        endOfPassWriteIndex: 2 * i + 1,
      };
    }
    this.#passes++;
    this.#pass = this.#enc.beginComputePass({ timestampWrites });
  }

  /** Records `kernel` over `workgroups` workgroups (2-D past 65535) in the open pass. */
  dispatch(kernel: FastKernel, buffers: GPUBuffer[], workgroups: number): void {
    if (workgroups <= 0) return;
    const pipeline = this.gpu.pipeline(kernel);
    const bind = this.gpu.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const pass = this.#pass!;
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    const x = Math.min(workgroups, 65535);
    pass.dispatchWorkgroups(x, Math.ceil(workgroups / x));
  }

  /**
   * Ends the pass, copies `parts` (buffer, byte offset, bytes; offsets and sizes multiples of
   * 4) into one staging buffer, submits, and returns one host copy of them all with each part's
   * offset in it.
   */
  async finish(parts: [GPUBuffer, number, number][]): Promise<{ bytes: Uint8Array; at: number[] }> {
    this.#pass?.end();
    const enc = this.#enc!;
    const at: number[] = [];
    let total = 0;
    for (const [, , n] of parts) at.push(total), total += n;
    const staging = this.gpu.device.createBuffer({
      size: Math.max(4, total),
      usage: usage().MAP_READ | usage().COPY_DST,
    });
    try {
      parts.forEach(([b, off, n], i) => {
        if (n > 0) enc.copyBufferToBuffer(b, off, staging, at[i], n);
      });
      this.phase("record");
      const t0 = performance.now();
      this.gpu.device.queue.submit([enc.finish()]);
      const checked = this.#close();
      await this.gpu.device.queue.onSubmittedWorkDone();
      this.#wallMs += performance.now() - t0;
      await checked;
      this.#submissions++;
      this.phase("gpu");
      await staging.mapAsync(GPUMapMode.READ);
      const bytes = new Uint8Array(total);
      if (total > 0) bytes.set(new Uint8Array(staging.getMappedRange(0, total)));
      staging.unmap();
      this.phase("map");
      return { bytes, at };
    } finally {
      staging.destroy();
      this.#enc = this.#pass = undefined;
    }
  }

  /** The run's GPU time; reads the timestamps back when there are some (one more round trip). */
  async timing(): Promise<FastTiming> {
    const used = Math.min(this.#passes, MAX_PASSES);
    if (!this.#query || used === 0) {
      return { gpuMs: this.#wallMs, source: "submit", submissions: this.#submissions, phases: this.#phases };
    }
    const submissions = this.#submissions, phases = { ...this.#phases };
    this.begin(false);
    const resolve = this.gpu.device.createBuffer({
      size: 16 * MAX_PASSES,
      usage: usage().QUERY_RESOLVE | usage().COPY_SRC,
    });
    this.#owned.push(resolve);
    this.#enc!.resolveQuerySet(this.#query, 0, 2 * used, resolve, 0);
    const { bytes } = await this.finish([[resolve, 0, 16 * used]]);
    const t = new BigUint64Array(bytes.buffer, 0, 2 * used);
    let ns = 0n;
    for (let i = 0; i < used; i++) if (t[2 * i + 1] > t[2 * i]) ns += t[2 * i + 1] - t[2 * i];
    return { gpuMs: Number(ns) / 1e6, source: "timestamp", submissions, phases };
  }

  /** Destroys every buffer and the query set (and closes error scopes left open by a throw). */
  release(): void {
    this.#close().catch(() => {});
    for (const b of this.#owned) b.destroy();
    this.#query?.destroy();
  }
}
