/**
 * RoPE layout conversion. The runtime uses one convention, Hugging Face's rotate-half:
 * within a head, dimension i pairs with i + headDim/2. llama2.c (and Meta's original
 * checkpoints) pair interleaved dimensions (2i, 2i+1). Permuting the output rows of wq and
 * wk turns one into the other without changing any attention score, because q·k is
 * invariant under the same permutation of both.
 * @module
 */

/**
 * Reorders the rows of a projection `[nHeads*headDim, inDim]` from interleaved pairs to
 * rotate-half: new row j of a head is old row 2j, new row j + headDim/2 is old row 2j+1.
 */
export function interleavedToRotateHalf(
  w: Float32Array,
  nHeads: number,
  opts: { headDim: number; inDim: number },
): Float32Array {
  const { headDim, inDim } = opts;
  if (w.length !== nHeads * headDim * inDim) {
    throw new RangeError(`rope permute: ${w.length} values, expected ${nHeads}*${headDim}*${inDim}`);
  }
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    const base = h * headDim;
    for (let j = 0; j < half; j++) {
      out.set(w.subarray((base + 2 * j) * inDim, (base + 2 * j + 1) * inDim), (base + j) * inDim);
      out.set(w.subarray((base + 2 * j + 1) * inDim, (base + 2 * j + 2) * inDim), (base + half + j) * inDim);
    }
  }
  return out;
}

/** Inverse frequencies `theta^(-2j/headDim)` for j < headDim/2, as HF and llama2.c compute them. */
export function ropeInvFreq(headDim: number, theta: number): Float32Array {
  const out = new Float32Array(headDim / 2);
  for (let j = 0; j < out.length; j++) out[j] = 1 / Math.pow(theta, (2 * j) / headDim);
  return out;
}
