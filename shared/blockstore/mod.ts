/**
 * The decode service's paged per-head KV block store (ARCHITECTURE.md §3, §5): a fixed
 * arena of blocks, a free-list allocator that frees whole blocks, a block table and a
 * length per (sequence, layer, KV head), and the dense padded gather `Model.decode` takes.
 *
 * @example
 * ```ts
 * import { BlockStore, blocksForBytes } from "./mod.ts";
 * const maxBlocks = blocksForBytes(1 << 20, { blockSize: 16, headDim: 8 });
 * const store = new BlockStore({ nLayers: 2, nKvHeads: 2, headDim: 8, blockSize: 16, maxBlocks });
 * store.addSequence("s", () => ({ keys: new Float32Array(20 * 8), values: new Float32Array(20 * 8) }));
 * console.log(store.stats().usedBlocks); // 8
 * ```
 * @module
 */
export {
  BlockStore,
  type BlockStoreOptions,
  type BlockStoreStats,
  type GatheredLayer,
} from "./block_store.ts";
export { OutOfBlocksError } from "./errors.ts";
export { type BlockGeometry, blocksForBytes, blocksForLengths, bytesPerBlock } from "./budget.ts";
