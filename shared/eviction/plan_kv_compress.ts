/**
 * KV-Compress eviction planning (Rehg 2024): variable rates per layer and KV head, whole
 * blocks evicted.
 * @module
 */
import { assemblePlan, radixSort, rankByMetric } from "./_rank.ts";
import { type EvictionOptions, type EvictionPlan, type KvShape, resolveEviction } from "./types.ts";

/**
 * Plans KV-Compress eviction over one request's KV cache.
 *
 * Within each (layer, KV head) the evictable KVs are sorted by metric (ties: older
 * position first); run j of `blockSize` of them is candidate j of that head. All
 * candidates of all heads compete in one global order and the lowest go until at most the
 * target remains, so the kept count lands in `(target - blockSize, target]` unless
 * protected positions or the one-block floor stop it first.
 *
 * Block score: the metric of the block's highest-ranked member (the max), as in the
 * reference fork: `schedule_cache_evictions_kernel` (IsaacRe/vllm-kvcompress,
 * csrc/kvcompress) walks every KV of the sequence in ascending metric order and counts a
 * block evicted when its head's BLOCK_SIZE-th pending KV is reached, i.e. at the rank of
 * the block's max. Ties between blocks go to the lower `layer * nKvHeads + head`, then to
 * the earlier block of that head, so a plan depends on nothing but its inputs.
 *
 * @param metric `[nLayers, nKvHeads, nPos]` squared attention of the last queries per GQA group
 * @example
 * ```ts
 * import { planKvCompress } from "./plan_kv_compress.ts";
 * const shape = { nLayers: 1, nKvHeads: 2, nPos: 64 };
 * const metric = new Float32Array(128).map((_, i) => (i < 64 ? 1 : i));
 * const plan = planKvCompress(metric, shape, { rate: 2, blockSize: 8, protectedWindow: 8, sink: 0 });
 * console.log(plan.keptCount); // 64
 * ```
 */
export function planKvCompress(metric: Float32Array, shape: KvShape, opts: EvictionOptions): EvictionPlan {
  const r = resolveEviction(metric.length, shape, opts);
  const rankings = rankByMetric(metric, shape, r);
  const heads = rankings.length;
  const bs = r.blockSize;
  const total = heads * shape.nPos;
  const toEvict = Math.ceil(Math.max(0, total - r.targetKept) / bs);
  const evictBlocks = new Int32Array(heads);
  if (toEvict === 0) return assemblePlan(shape, r, rankings, evictBlocks);

  // Every candidate as (score, owner head), listed head by head and block by block; a
  // stable sort by score then leaves ties in (head, block) order, and the first `toEvict`
  // are the lowest. Scores never decrease along a head, so each head loses a prefix.
  const perHead = rankings[0].maxBlocks;
  const n = heads * perHead;
  const scores = new Uint32Array(n);
  const owner = new Int32Array(n);
  for (let h = 0; h < heads; h++) {
    const keys = rankings[h].keys!;
    for (let j = 0; j < perHead; j++) {
      scores[h * perHead + j] = keys[(j + 1) * bs - 1];
      owner[h * perHead + j] = h;
    }
  }
  radixSort(scores, owner, new Uint32Array(n), new Int32Array(n));
  for (let i = 0; i < Math.min(toEvict, n); i++) evictBlocks[owner[i]]++;
  return assemblePlan(shape, r, rankings, evictBlocks);
}
