/**
 * Pure planning for CUDA decode calls: streams cut into library calls of bounded size, and the
 * check that a caller's output can hold a stream's values (`decodeManyInto`).
 * @module
 */

/** Values of one library call at most (its output indices are u32: 2^30 values, 4 GiB of f32). */
export const MAX_CALL_VALUES = 2 ** 30;

/**
 * Consecutive `[start, end)` runs of `sizes` whose sums stay within `max` (a size over `max`
 * gets a run alone), in order, covering every index once.
 */
export function splitCalls(sizes: number[], max = MAX_CALL_VALUES): [number, number][] {
  const runs: [number, number][] = [];
  for (let g = 0; g < sizes.length;) {
    let sum = 0, end = g;
    while (end < sizes.length && (end === g || sum + sizes[end] <= max)) sum += sizes[end++];
    runs.push([g, end]);
    g = end;
  }
  return runs;
}

/**
 * The first `n` values of `out`, where stream `i`'s values go; a `RangeError` when `out` is
 * not a `Float32Array` or is shorter than `n`.
 */
export function outputFor(out: unknown, n: number, i: number): Float32Array {
  if (!(out instanceof Float32Array)) {
    throw new TypeError(`decodeManyInto: output ${i} is not a Float32Array`);
  }
  if (out.length < n) {
    throw new RangeError(`decodeManyInto: stream ${i} has ${n} values but its output holds ${out.length}`);
  }
  return out.length === n ? out : out.subarray(0, n);
}
