/**
 * Block arithmetic for sizing a store: bytes per block, blocks in a byte budget, blocks a
 * set of per-head lengths takes.
 * @module
 */

/** Geometry of one block. */
export interface BlockGeometry {
  blockSize: number;
  headDim: number;
}

/**
 * Bytes one block holds: K and V, `[blockSize, headDim]` fp32 each.
 *
 * @example
 * ```ts
 * import { bytesPerBlock } from "./budget.ts";
 * bytesPerBlock({ blockSize: 16, headDim: 128 }); // 16384
 * ```
 */
export function bytesPerBlock(g: BlockGeometry): number {
  return 2 * g.blockSize * g.headDim * 4;
}

/**
 * Whole blocks that fit in a byte budget.
 *
 * @example
 * ```ts
 * import { blocksForBytes } from "./budget.ts";
 * blocksForBytes(1 << 20, { blockSize: 16, headDim: 128 }); // 64
 * ```
 */
export function blocksForBytes(bytes: number, g: BlockGeometry): number {
  if (!(bytes >= 0)) throw new RangeError(`blocksForBytes: ${bytes} bytes`);
  return Math.floor(bytes / bytesPerBlock(g));
}

/**
 * Blocks needed for heads of these lengths (each head rounds up to whole blocks).
 *
 * @example
 * ```ts
 * import { blocksForLengths } from "./budget.ts";
 * blocksForLengths([16, 17, 0], 16); // 3
 * ```
 */
export function blocksForLengths(lengths: Iterable<number>, blockSize: number): number {
  let n = 0;
  for (const len of lengths) n += Math.ceil(len / blockSize);
  return n;
}
