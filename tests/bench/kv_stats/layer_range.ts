/**
 * The error-bound convention of the KVSort poster: a relative bound `rel` means the absolute
 * bound rel × (max − min) of one layer's whole K (or V) array, every KV head together, not of
 * each head's frame. Frames of the same sample, kind and layer therefore share one bound.
 * @module
 */
import type { KvFrame } from "./frame.ts";

/** max − min over the frames of each (sample, kind, layer), keyed by {@link layerKey}. */
export function layerRanges(frames: readonly KvFrame[]): Map<string, number> {
  const lo = new Map<string, number>(), hi = new Map<string, number>();
  for (const f of frames) {
    const key = layerKey(f);
    let a = lo.get(key) ?? Infinity, b = hi.get(key) ?? -Infinity;
    for (const v of f.data) {
      if (v < a) a = v;
      if (v > b) b = v;
    }
    lo.set(key, a), hi.set(key, b);
  }
  return new Map([...lo].map(([key, a]) => [key, hi.get(key)! - a]));
}

/** The key of a frame's layer in {@link layerRanges}. */
export function layerKey(f: Pick<KvFrame, "sample" | "kind" | "layer">): string {
  return `${f.sample}|${f.kind}|${f.layer}`;
}
