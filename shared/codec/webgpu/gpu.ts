/**
 * The small layer between the codec and WebGPU: compiled pipelines (once per device),
 * storage buffers, 2-D dispatch for more than 65535 workgroups, batched read-back through
 * one staging buffer, and GPU time per compute pass (timestamp queries when the device has
 * them, else wall time from submit to `onSubmittedWorkDone`).
 * @module
 */
import type { GpuHandle } from "./device.ts";
import * as K from "./kernels.ts";

/** Kernel names (entry point `main` in each source). */
export type KernelName =
  | "stats"
  | "sort"
  | "quantize"
  | "huffCount"
  | "huffScan"
  | "huffWrite"
  | "decRows"
  | "decMap";

const SOURCES: Record<KernelName, string> = {
  stats: K.STATS,
  sort: K.SORT,
  quantize: K.QUANTIZE,
  huffCount: K.HUFF_COUNT,
  huffScan: K.HUFF_SCAN,
  huffWrite: K.HUFF_WRITE,
  decRows: K.DEC_ROWS,
  decMap: K.DEC_MAP,
};

const S = GPUBufferUsage.STORAGE, CD = GPUBufferUsage.COPY_DST, CS = GPUBufferUsage.COPY_SRC;

/** GPU time and transfer accounting of one encode or decode. */
export interface GpuTiming {
  /** Sum of compute-pass durations (timestamp queries) or of submit→done wall times. */
  gpuMs: number;
  /** How gpuMs was measured. */
  source: "timestamp" | "submit";
  passes: number;
}

/** A device with its compiled kernels. */
export class GpuContext {
  readonly handle: GpuHandle;
  readonly device: GPUDevice;
  readonly maxBinding: number;
  #pipelines = new Map<KernelName, GPUComputePipeline>();

  private constructor(handle: GpuHandle) {
    this.handle = handle;
    this.device = handle.device;
    this.maxBinding = Math.min(
      this.device.limits.maxStorageBufferBindingSize,
      this.device.limits.maxBufferSize,
    );
  }

  /** Compiles every kernel; WGSL errors surface here, not on first use. */
  static async create(handle: GpuHandle): Promise<GpuContext> {
    const ctx = new GpuContext(handle);
    const d = ctx.device;
    d.pushErrorScope("validation");
    for (const [name, code] of Object.entries(SOURCES) as [KernelName, string][]) {
      const module = d.createShaderModule({ code, label: name });
      const p = await d.createComputePipelineAsync({
        layout: "auto",
        compute: { module, entryPoint: "main" },
        label: name,
      });
      ctx.#pipelines.set(name, p);
    }
    const err = await d.popErrorScope();
    if (err) throw new Error(`WebGPU codec kernels failed to compile: ${err.message}`);
    return ctx;
  }

  /** A storage buffer of at least `bytes` (rounded up to 4, at least 4), optionally filled. */
  buffer(bytes: number, data?: ArrayBufferView, extra = 0): GPUBuffer {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const b = this.device.createBuffer({ size, usage: S | CD | CS | extra });
    if (data && data.byteLength > 0) this.write(b, data);
    return b;
  }

  /** Uploads `data` at offset 0, padding to a multiple of 4 bytes. */
  write(b: GPUBuffer, data: ArrayBufferView): void {
    const u8 = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    if (u8.byteLength % 4 === 0) this.device.queue.writeBuffer(b, 0, u8);
    else {
      const padded = new Uint8Array(Math.ceil(u8.byteLength / 4) * 4);
      padded.set(u8);
      this.device.queue.writeBuffer(b, 0, padded);
    }
  }

  /** A uniform buffer holding the 16-word Params block. */
  params(p: Partial<Record<ParamName, number>>): GPUBuffer {
    const words = new ArrayBuffer(K.PARAMS_WORDS * 4);
    const u = new Uint32Array(words), i = new Int32Array(words), f = new Float32Array(words);
    for (const [name, v] of Object.entries(p) as [ParamName, number][]) {
      const at = PARAM_INDEX[name];
      if (name === "invF") f[at] = v;
      else if (name === "lo") i[at] = v;
      else u[at] = v;
    }
    const b = this.device.createBuffer({ size: words.byteLength, usage: GPUBufferUsage.UNIFORM | CD });
    this.device.queue.writeBuffer(b, 0, words);
    return b;
  }

  /** Records one compute pass of `kernel` over `workgroups` workgroups (2-D when needed). */
  dispatch(
    enc: GPUCommandEncoder,
    prof: Profiler,
    kernel: KernelName,
    buffers: GPUBuffer[],
    workgroups: number,
  ): void {
    if (workgroups <= 0) return;
    const pipeline = this.#pipelines.get(kernel)!;
    const bind = this.device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const pass = enc.beginComputePass({ timestampWrites: prof.slot() });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, bind);
    const x = Math.min(workgroups, 65535);
    pass.dispatchWorkgroups(x, Math.ceil(workgroups / x));
    pass.end();
  }

  /** Submits `enc` and waits until the GPU is done (timed as a fallback when there are no timestamps). */
  async submit(enc: GPUCommandEncoder, prof: Profiler): Promise<void> {
    const t0 = performance.now();
    this.device.queue.submit([enc.finish()]);
    await this.device.queue.onSubmittedWorkDone();
    prof.wall += performance.now() - t0;
  }

  /** Copies `parts` (buffer, byte length) into one staging buffer, submits, maps and returns copies. */
  async readBack(
    enc: GPUCommandEncoder,
    prof: Profiler,
    parts: [GPUBuffer, number][],
  ): Promise<Uint8Array[]> {
    return (await this.readBackMany([{ enc, prof, parts }]))[0];
  }

  /**
   * `readBack` for several command encoders at once: one staging buffer, one submission of
   * all of them (in order), one map. Each profiler is charged the whole wall time.
   */
  async readBackMany(
    jobs: { enc: GPUCommandEncoder; prof: Profiler; parts: [GPUBuffer, number][] }[],
  ): Promise<Uint8Array[][]> {
    const offsets: number[][] = [];
    let total = 0;
    for (const { parts } of jobs) {
      offsets.push(parts.map(([, len]) => {
        const at = total;
        total += Math.ceil(len / 4) * 4;
        return at;
      }));
    }
    const staging = this.device.createBuffer({
      size: Math.max(total, 4),
      usage: GPUBufferUsage.MAP_READ | CD,
    });
    try {
      jobs.forEach(({ enc, parts }, j) =>
        parts.forEach(([b, len], i) => {
          if (len > 0) enc.copyBufferToBuffer(b, 0, staging, offsets[j][i], Math.ceil(len / 4) * 4);
        })
      );
      const t0 = performance.now();
      this.device.queue.submit(jobs.map(({ enc }) => enc.finish()));
      await this.device.queue.onSubmittedWorkDone();
      const wall = performance.now() - t0;
      for (const { prof } of jobs) prof.wall += wall;
      await staging.mapAsync(GPUMapMode.READ);
      const all = new Uint8Array(staging.getMappedRange());
      const out = jobs.map(({ parts }, j) =>
        parts.map(([, len], i) => all.slice(offsets[j][i], offsets[j][i] + len))
      );
      staging.unmap();
      return out;
    } finally {
      staging.destroy();
    }
  }
}

/**
 * What one encode or decode holds on the device: its profiler, storage buffers and Params
 * uniforms, all released together by `release()` (in a `finally`).
 */
export class GpuCall {
  readonly prof: Profiler;
  readonly #ctx: GpuContext;
  readonly #owned: GPUBuffer[] = [];

  constructor(ctx: GpuContext, timestamps: boolean) {
    this.#ctx = ctx;
    this.prof = new Profiler(ctx, timestamps);
  }

  /** `GpuContext.buffer`, released with the call. */
  readonly buffer = (bytes: number, data?: ArrayBufferView): GPUBuffer => {
    const b = this.#ctx.buffer(bytes, data);
    this.#owned.push(b);
    return b;
  };

  /** `GpuContext.params`, released with the call. */
  readonly uniform = (p: Partial<Record<ParamName, number>>): GPUBuffer => {
    const b = this.#ctx.params(p);
    this.#owned.push(b);
    return b;
  };

  /** Drops the profiler's queries and destroys every buffer of the call. */
  release(): void {
    this.prof.dispose();
    for (const b of this.#owned) b.destroy();
  }
}

type ParamName =
  | "n"
  | "rows"
  | "cols"
  | "k"
  | "dtype"
  | "tabSize"
  | "lo"
  | "excCap"
  | "invF"
  | "sortSize"
  | "nBlocks"
  | "nExc";
const PARAM_INDEX: Record<ParamName, number> = {
  n: 0,
  rows: 1,
  cols: 2,
  k: 3,
  dtype: 4,
  tabSize: 5,
  lo: 6,
  excCap: 7,
  invF: 8,
  sortSize: 9,
  nBlocks: 10,
  nExc: 11,
};

const MAX_PASSES = 32;

/** Per-call pass timing: timestamp queries when available and asked for. */
export class Profiler {
  #ctx: GpuContext;
  #set?: GPUQuerySet;
  #resolveBuf?: GPUBuffer;
  #used = 0;
  wall = 0;

  constructor(ctx: GpuContext, timestamps: boolean) {
    this.#ctx = ctx;
    if (timestamps && ctx.handle.timestamps) {
      this.#set = ctx.device.createQuerySet({ type: "timestamp", count: 2 * MAX_PASSES });
      this.#resolveBuf = ctx.device.createBuffer({
        size: 16 * MAX_PASSES,
        usage: GPUBufferUsage.QUERY_RESOLVE | CS,
      });
    }
  }

  /** The timestampWrites of the next pass (undefined without timestamps). */
  slot(): GPUComputePassTimestampWrites | undefined {
    if (!this.#set || this.#used >= MAX_PASSES) {
      this.#used++;
      return undefined;
    }
    const i = this.#used++;
    return { querySet: this.#set, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** The timing of the call; reads the timestamps back when there are some. */
  async finish(): Promise<GpuTiming> {
    const passes = this.#used;
    const used = Math.min(passes, MAX_PASSES);
    if (!this.#set || used === 0) {
      this.dispose();
      return { gpuMs: this.wall, source: "submit", passes };
    }
    // all queries resolved at once: a resolve's destination offset must be a multiple of 256
    const enc = this.#ctx.device.createCommandEncoder();
    enc.resolveQuerySet(this.#set, 0, 2 * used, this.#resolveBuf!, 0);
    const [raw] = await this.#ctx.readBack(enc, new Profiler(this.#ctx, false), [[
      this.#resolveBuf!,
      16 * used,
    ]]);
    const t = new BigUint64Array(raw.buffer);
    let ns = 0n;
    for (let i = 0; i < used; i++) if (t[2 * i + 1] > t[2 * i]) ns += t[2 * i + 1] - t[2 * i];
    this.dispose();
    return { gpuMs: Number(ns) / 1e6, source: "timestamp", passes };
  }

  /** Releases the query resources without reading them. */
  dispose(): void {
    this.#set?.destroy();
    this.#resolveBuf?.destroy();
  }
}
