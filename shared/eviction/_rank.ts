/**
 * Internal to the planners: which positions of each (layer, KV head) may go, in what
 * order, and how a count of evicted blocks per head becomes a plan.
 *
 * A head's evictable positions are `[lo, hi)` with `lo = sink` and `hi = nPos -
 * protectedWindow` (both clipped). Its candidates are the runs of `blockSize` positions
 * at the front of its eviction order; it offers at most `maxBlocks` of them, so that at
 * least `min(max(blockSize, floor), nPos)` KVs (one block by default) always survive.
 * @module
 */
import { maxPool1d } from "./max_pool.ts";
import type { EvictionPlan, KvShape, ResolvedEviction } from "./types.ts";

/** One head's eviction order. */
export interface HeadRanking {
  /** Evictable positions, the first to go first. */
  order: Int32Array;
  /** Order keys parallel to `order` (ascending), or null for a ranking by position. */
  keys: Uint32Array | null;
  /** Candidate blocks this head offers. */
  maxBlocks: number;
}

/** Evictable range and candidate count of every head (all heads share them). */
export function evictableRange(
  nPos: number,
  r: ResolvedEviction,
): { lo: number; hi: number; maxBlocks: number } {
  const lo = r.sink;
  const hi = Math.max(lo, nPos - r.protectedWindow);
  const keepAtLeast = Math.min(nPos, Math.max(r.blockSize, r.floor));
  const maxBlocks = Math.min(
    Math.floor((hi - lo) / r.blockSize),
    Math.floor((nPos - keepAtLeast) / r.blockSize),
  );
  return { lo, hi, maxBlocks };
}

/**
 * Maps a float's bits to a uint32 that sorts like the float; any NaN maps to the top, so a
 * NaN metric is never preferred for eviction.
 */
export function orderKey(bits: number, value: number): number {
  if (value !== value) return 0xffffffff;
  return bits & 0x80000000 ? ~bits >>> 0 : (bits | 0x80000000) >>> 0;
}

/**
 * Sorts `keys` ascending and permutes `order` alike: a stable LSD radix sort, 8 bits a
 * pass, skipping a pass where every key has the same byte. Stable, so equal keys keep the
 * order they came in.
 */
export function radixSort(
  keys: Uint32Array,
  order: Int32Array,
  tmpKeys: Uint32Array,
  tmpOrder: Int32Array,
): void {
  const n = keys.length;
  const count = new Int32Array(256);
  let k = keys, o = order, k2 = tmpKeys, o2 = tmpOrder;
  for (let shift = 0; shift < 32; shift += 8) {
    count.fill(0);
    for (let i = 0; i < n; i++) count[(k[i] >>> shift) & 255]++;
    if (n === 0 || count[(k[0] >>> shift) & 255] === n) continue;
    let sum = 0;
    for (let b = 0; b < 256; b++) {
      const c = count[b];
      count[b] = sum;
      sum += c;
    }
    for (let i = 0; i < n; i++) {
      const dst = count[(k[i] >>> shift) & 255]++;
      k2[dst] = k[i];
      o2[dst] = o[i];
    }
    [k, k2] = [k2, k];
    [o, o2] = [o2, o];
  }
  if (k !== keys) {
    keys.set(k);
    order.set(o);
  }
}

/**
 * Ranks each head's evictable positions by ascending metric; ties go to the lower
 * (older) position first.
 */
export function rankByMetric(metric: Float32Array, shape: KvShape, r: ResolvedEviction): HeadRanking[] {
  const { nPos } = shape;
  const { lo, hi, maxBlocks } = evictableRange(nPos, r);
  const n = hi - lo;
  const heads = shape.nLayers * shape.nKvHeads;
  const tmpKeys = new Uint32Array(n);
  const tmpOrder = new Int32Array(n);
  const out: HeadRanking[] = [];
  for (let h = 0; h < heads; h++) {
    let row = metric.subarray(h * nPos, (h + 1) * nPos);
    if (r.maxPool > 1) row = maxPool1d(row, r.maxPool);
    const bits = new Uint32Array(row.buffer, row.byteOffset, nPos);
    const order = new Int32Array(n);
    const keys = new Uint32Array(n);
    for (let i = 0; i < n; i++) {
      order[i] = lo + i;
      keys[i] = orderKey(bits[lo + i], row[lo + i]);
    }
    radixSort(keys, order, tmpKeys, tmpOrder);
    out.push({ order, keys, maxBlocks });
  }
  return out;
}

/** Ranks each head's evictable positions oldest first (the recency baseline). */
export function rankByPosition(shape: KvShape, r: ResolvedEviction): HeadRanking[] {
  const { lo, hi, maxBlocks } = evictableRange(shape.nPos, r);
  const order = new Int32Array(hi - lo);
  for (let i = 0; i < order.length; i++) order[i] = lo + i;
  return Array.from({ length: shape.nLayers * shape.nKvHeads }, () => ({ order, keys: null, maxBlocks }));
}

/**
 * Blocks to evict per head when every head keeps the same count: each keeps at most
 * `floor(targetKept / heads)` KVs, down to what its protected positions allow.
 */
export function uniformBlocks(shape: KvShape, r: ResolvedEviction, rankings: HeadRanking[]): Int32Array {
  const heads = rankings.length;
  const perHead = Math.floor(r.targetKept / heads);
  const want = Math.ceil(Math.max(0, shape.nPos - perHead) / r.blockSize);
  return Int32Array.from(rankings, (rk) => Math.min(want, rk.maxBlocks));
}

/** Turns evicted-block counts per head into a plan with kept positions ascending. */
export function assemblePlan(
  shape: KvShape,
  r: ResolvedEviction,
  rankings: HeadRanking[],
  evictBlocks: Int32Array,
): EvictionPlan {
  const { nLayers, nKvHeads, nPos } = shape;
  const gone = new Uint8Array(nPos);
  const kept: Int32Array[] = [];
  const keptPerLayer = new Array<number>(nLayers).fill(0);
  let keptCount = 0;
  for (let h = 0; h < rankings.length; h++) {
    const nEvict = evictBlocks[h] * r.blockSize;
    const order = rankings[h].order;
    gone.fill(0);
    for (let i = 0; i < nEvict; i++) gone[order[i]] = 1;
    const k = new Int32Array(nPos - nEvict);
    let j = 0;
    for (let p = 0; p < nPos; p++) if (gone[p] === 0) k[j++] = p;
    kept.push(k);
    keptCount += k.length;
    keptPerLayer[Math.floor(h / nKvHeads)] += k.length;
  }
  return {
    nLayers,
    nKvHeads,
    nPos,
    blockSize: r.blockSize,
    kept,
    keptCount,
    totalCount: nLayers * nKvHeads * nPos,
    keptFractionPerLayer: keptPerLayer.map((c) => c / (nKvHeads * nPos)),
  };
}
