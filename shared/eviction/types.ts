/**
 * Shapes, options and the plan that every eviction planner shares, and the one place
 * options are validated and turned into a KV target.
 * @module
 */

/** Default KVs per block (ARCHITECTURE.md §3). */
export const DEFAULT_BLOCK_SIZE = 16;
/** Default count of last positions never evicted (ARCHITECTURE.md §5). */
export const DEFAULT_PROTECTED_WINDOW = 64;
/** Default count of first positions never evicted (attention sinks). */
export const DEFAULT_SINK = 4;
/** Largest prompt a planner accepts: positions must fit the 21 low bits of a sort key. */
export const MAX_POSITIONS = 1 << 21;

/** Shape of a metric: `[nLayers, nKvHeads, nPos]`. */
export interface KvShape {
  nLayers: number;
  nKvHeads: number;
  nPos: number;
}

/**
 * What to keep. Give `rate`, `maxCacheTokens`, both (the smaller target wins) or neither
 * (keep everything).
 */
export interface EvictionOptions {
  /** KVs per block; eviction removes whole blocks of this many KVs from one head. Default 16. */
  blockSize?: number;
  /** Compression rate R >= 1: keep at most `floor(total / R)` KVs, counted over all layers and heads. */
  rate?: number;
  /**
   * Token budget: keep at most `maxCacheTokens * nLayers * nKvHeads` KVs in all, i.e. on
   * average at most `maxCacheTokens` per (layer, KV head). A single head may keep more or
   * fewer; for the uniform and recency baselines every head keeps at most this many.
   */
  maxCacheTokens?: number;
  /** Last positions never evicted; default 64, clipped to the prompt. */
  protectedWindow?: number;
  /** First positions never evicted; default 4, clipped to the prompt. */
  sink?: number;
  /** KVs every (layer, KV head) keeps at least; default (and at least) one block. */
  floor?: number;
  /** Width of a max-pool over positions applied to the metric before ranking; 0 or 1 = off. */
  maxPool?: number;
}

/** The result of planning: which true positions survive in each (layer, KV head). */
export interface EvictionPlan {
  nLayers: number;
  nKvHeads: number;
  nPos: number;
  blockSize: number;
  /** Per `layer * nKvHeads + head`: the kept true positions, ascending. */
  kept: Int32Array[];
  /** KVs kept over all layers and heads. */
  keptCount: number;
  /** `nLayers * nKvHeads * nPos`. */
  totalCount: number;
  /** Per layer: kept KVs / (`nKvHeads * nPos`). */
  keptFractionPerLayer: number[];
}

/** Options after defaults and validation, with the KV target resolved. */
export interface ResolvedEviction {
  blockSize: number;
  protectedWindow: number;
  sink: number;
  /** KVs each head keeps at least (at least one block of them). */
  floor: number;
  maxPool: number;
  /** Most KVs to keep over all heads. */
  targetKept: number;
}

function intOption(name: string, v: number | undefined, dflt: number, min: number): number {
  if (v === undefined) return dflt;
  if (!Number.isInteger(v) || v < min) {
    throw new RangeError(`eviction: ${name} = ${v} is not an integer >= ${min}`);
  }
  return v;
}

/**
 * Validates a shape, the metric length and the options; throws `TypeError` for a wrong
 * shape and `RangeError` for an out-of-range option.
 */
export function resolveEviction(
  metricLength: number,
  shape: KvShape,
  opts: EvictionOptions,
): ResolvedEviction {
  for (const k of ["nLayers", "nKvHeads", "nPos"] as const) {
    if (!Number.isInteger(shape[k]) || shape[k] <= 0) {
      throw new TypeError(`eviction: shape.${k} = ${shape[k]} is not a positive integer`);
    }
  }
  if (shape.nPos > MAX_POSITIONS) throw new RangeError(`eviction: nPos ${shape.nPos} > ${MAX_POSITIONS}`);
  const heads = shape.nLayers * shape.nKvHeads;
  const total = heads * shape.nPos;
  if (metricLength !== total) {
    throw new TypeError(`eviction: metric has ${metricLength} values, shape needs ${total}`);
  }
  const blockSize = intOption("blockSize", opts.blockSize, DEFAULT_BLOCK_SIZE, 1);
  const protectedWindow = Math.min(
    intOption("protectedWindow", opts.protectedWindow, DEFAULT_PROTECTED_WINDOW, 0),
    shape.nPos,
  );
  const sink = Math.min(intOption("sink", opts.sink, DEFAULT_SINK, 0), shape.nPos);
  const maxPool = intOption("maxPool", opts.maxPool, 0, 0);
  const floor = intOption("floor", opts.floor, blockSize, 0);
  let targetKept = total;
  if (opts.rate !== undefined) {
    if (!(Number.isFinite(opts.rate) && opts.rate >= 1)) {
      throw new RangeError(`eviction: rate ${opts.rate} < 1`);
    }
    targetKept = Math.min(targetKept, Math.floor(total / opts.rate));
  }
  if (opts.maxCacheTokens !== undefined) {
    const m = intOption("maxCacheTokens", opts.maxCacheTokens, 0, 0);
    targetKept = Math.min(targetKept, m * heads);
  }
  return { blockSize, protectedWindow, sink, floor, maxPool, targetKept };
}
