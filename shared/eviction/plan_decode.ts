/**
 * Eviction planning while decoding: the heads of a sequence hold different numbers of rows
 * (earlier plans evicted at rates that vary per head), so the planner takes one metric row
 * per (layer, KV head), each as long as that head is, and says which rows go.
 * @module
 */
import { orderKey, radixSort } from "./_rank.ts";

/** What to keep, over the heads of one sequence as they are now. */
export interface DecodePlanOptions {
  policy: "kvcompress" | "uniform" | "recency";
  /** Rows per block: each head loses whole runs of this many of its ranked rows. */
  blockSize: number;
  /** Last rows of each head (the newest tokens) never evicted. */
  protectedWindow: number;
  /** First rows of each head never evicted. */
  sink: number;
  /** Rows every head keeps at least (at least one block of them). */
  floor: number;
  /** Most rows to keep over all heads. */
  targetKept: number;
  /** Most rows any one head keeps (`max_cache_tokens`); none when absent. */
  headCap?: number;
}

/** Which rows go: per head, ascending row indices. */
export interface DecodePlan {
  drop: Int32Array[];
  /** Rows kept over all heads after the plan. */
  keptCount: number;
}

/** One head's candidates: its evictable rows, first to go first, and how many blocks it offers. */
interface Ranked {
  order: Int32Array;
  keys: Uint32Array | null;
  maxBlocks: number;
  /** Blocks it must lose to get under the head cap. */
  forced: number;
}

function rank(row: Float32Array, o: DecodePlanOptions): Ranked {
  const n = row.length, bs = o.blockSize;
  const lo = Math.min(o.sink, n);
  const hi = Math.max(lo, n - o.protectedWindow);
  const keepAtLeast = Math.min(n, Math.max(bs, o.floor));
  const maxBlocks = Math.max(0, Math.min(Math.floor((hi - lo) / bs), Math.floor((n - keepAtLeast) / bs)));
  const forced = o.headCap === undefined
    ? 0
    : Math.min(maxBlocks, Math.ceil(Math.max(0, n - o.headCap) / bs));
  const order = new Int32Array(hi - lo);
  for (let i = 0; i < order.length; i++) order[i] = lo + i;
  if (o.policy === "recency") return { order, keys: null, maxBlocks, forced };
  const bits = new Uint32Array(row.buffer, row.byteOffset, n);
  const keys = new Uint32Array(order.length);
  for (let i = 0; i < order.length; i++) keys[i] = orderKey(bits[lo + i], row[lo + i]);
  radixSort(keys, order, new Uint32Array(order.length), new Int32Array(order.length));
  return { order, keys, maxBlocks, forced };
}

/**
 * Plans eviction over a decoding sequence's heads, `metric[h]` one value per row of head h
 * (`layer * nKvHeads + head`), rows in position order.
 *
 * Each head first loses the blocks that put it over `headCap`. Then, for `kvcompress`, the
 * remaining candidate blocks of all heads compete in one global order by block score (the
 * metric of the block's highest-ranked member, ties to the lower head, then its earlier
 * block, as in {@link planKvCompress}) until at most `targetKept` rows remain; for
 * `uniform` (lowest metric) and `recency` (oldest rows) every head keeps at most
 * `floor(targetKept / heads)`. A head never loses its sink, its protected window or its
 * floor, so a target those forbid is missed, never broken through.
 *
 * @example
 * ```ts
 * import { planDecodeEviction } from "./plan_decode.ts";
 * const metric = [new Float32Array(40).fill(1), new Float32Array(24).fill(2)];
 * const opts = { policy: "kvcompress" as const, blockSize: 8, protectedWindow: 8, sink: 0, floor: 8, targetKept: 48 };
 * const plan = planDecodeEviction(metric, opts);
 * console.log(plan.drop.map((d) => d.length), plan.keptCount); // [16, 0] 48
 * ```
 */
export function planDecodeEviction(metric: Float32Array[], o: DecodePlanOptions): DecodePlan {
  for (const k of ["blockSize", "protectedWindow", "sink", "floor", "targetKept"] as const) {
    const min = k === "blockSize" ? 1 : 0;
    if (!Number.isInteger(o[k]) || o[k] < min) throw new RangeError(`decode plan: ${k} = ${o[k]}`);
  }
  if (o.headCap !== undefined && !(Number.isInteger(o.headCap) && o.headCap >= 0)) {
    throw new RangeError(`decode plan: headCap = ${o.headCap}`);
  }
  const bs = o.blockSize;
  const ranked = metric.map((row) => rank(row, o));
  const evict = Int32Array.from(ranked, (r) => r.forced);
  let kept = 0;
  metric.forEach((row, h) => kept += row.length - evict[h] * bs);
  if (o.policy === "kvcompress") {
    const toEvict = Math.ceil(Math.max(0, kept - o.targetKept) / bs);
    if (toEvict > 0) {
      // Candidates listed head by head, block by block: a stable sort by score leaves ties
      // in that order, and scores never fall along a head, so each head loses a prefix.
      let n = 0;
      for (const r of ranked) n += r.maxBlocks - r.forced;
      const scores = new Uint32Array(n);
      const owner = new Int32Array(n);
      let i = 0;
      ranked.forEach((r, h) => {
        for (let j = r.forced; j < r.maxBlocks; j++, i++) {
          scores[i] = r.keys![(j + 1) * bs - 1];
          owner[i] = h;
        }
      });
      radixSort(scores, owner, new Uint32Array(n), new Int32Array(n));
      for (let k = 0; k < Math.min(toEvict, n); k++) evict[owner[k]]++;
    }
  } else {
    const perHead = Math.floor(o.targetKept / Math.max(1, metric.length));
    metric.forEach((row, h) => {
      const want = Math.ceil(Math.max(0, row.length - perHead) / bs);
      evict[h] = Math.min(ranked[h].maxBlocks, Math.max(evict[h], want));
    });
  }
  kept = 0;
  const drop = ranked.map((r, h) => {
    const d = r.order.slice(0, evict[h] * bs).sort();
    kept += metric[h].length - d.length;
    return d;
  });
  return { drop, keptCount: kept };
}
